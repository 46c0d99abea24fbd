# capsa::interfaces — the built-in APIs' schemas (one .fbs per API) and
# register_builtin(). Included from capabilities/CMakeLists.txt.
set(_capsa_if_dir ${CMAKE_CURRENT_LIST_DIR})
capsa_flatbuffers(capsa_interface_schemas SCHEMAS
  ${_capsa_if_dir}/capsa_bootstrap.fbs
  ${_capsa_if_dir}/fs_directory.fbs
  ${_capsa_if_dir}/fs_file.fbs
  ${_capsa_if_dir}/log_sink.fbs
  ${_capsa_if_dir}/demo_word_count.fbs)
add_library(capsa_interfaces ${_capsa_if_dir}/builtin.cc)
add_library(capsa::interfaces ALIAS capsa_interfaces)
# The generated headers (capsa_bootstrap_generated.h, ...) are public: the
# SDK and the services build payloads with them.
target_link_libraries(capsa_interfaces PUBLIC capsa::capabilities capsa_interface_schemas
                      PRIVATE capsa_warnings)
set_target_properties(capsa_interfaces PROPERTIES POSITION_INDEPENDENT_CODE ON)

if(CAPSA_BUILD_TESTS)
  add_executable(interfaces_test ${_capsa_if_dir}/builtin_test.cc)
  target_link_libraries(interfaces_test PRIVATE capsa::interfaces capsa_test_support
                        capsa_warnings GTest::gtest_main)
  gtest_discover_tests(interfaces_test DISCOVERY_TIMEOUT 60)
endif()

# One library per folder, written the same way everywhere.
#
#   capsa_library(<name> <source>... [PUBLIC <dep>...] [PRIVATE <dep>...])
#
# makes the static library capsa_<name> and its alias capsa::<name>, with
# headers included as "<folder>/<file>.h" from the repository root (from
# <includedir>/capsa once installed), position-independent code (a host may
# link it into a shared object), C++23 required of whoever includes its
# headers, and the project's warnings on its own sources only (never
# exported). It is installed and exported as capsa::<name>
# (cmake/CapsaInstall.cmake), except the command line's own library.
#
#   capsa_test(<target> <source>... [LIBS <dep>...])
#
# makes a GoogleTest executable linked with the shared test support and
# registers its tests one by one with ctest. (Suites that start sandboxes
# use capsa_add_sandbox_test, sandbox/CMakeLists.txt, to run twice.)
function(capsa_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "PUBLIC;PRIVATE")
  add_library(capsa_${name} STATIC ${arg_UNPARSED_ARGUMENTS})
  add_library(capsa::${name} ALIAS capsa_${name})
  target_include_directories(capsa_${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
                             $<INSTALL_INTERFACE:${CAPSA_INSTALL_INCLUDEDIR}>)
  target_link_libraries(capsa_${name} PUBLIC ${arg_PUBLIC}
                        PRIVATE ${arg_PRIVATE} $<BUILD_INTERFACE:capsa_warnings>)
  target_compile_features(capsa_${name} PUBLIC cxx_std_23)
  set_target_properties(capsa_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(NOT name STREQUAL "cli")
    capsa_install_library(capsa_${name})
  endif()
endfunction()

function(capsa_test target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "LIBS")
  add_executable(${target} ${arg_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE ${arg_LIBS} capsa_test_support capsa_warnings
                        GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 60)
endfunction()

# The supervisor's built-in services (fs.Directory, fs.File, log.Sink).
# Included from supervisor/CMakeLists.txt: the sources go into the
# capsa_supervisor library (services and supervisor call each other); the
# foundations they stand on (path resolver, DirectoryScope, limits) are in
# capsa_supervisor_core (foundation.cmake).
set(_capsa_svc ${CMAKE_CURRENT_LIST_DIR})
list(APPEND CAPSA_SERVICE_SOURCES
  ${_capsa_svc}/builtin_services.cc
  ${_capsa_svc}/directory_service.cc
  ${_capsa_svc}/file_service.cc
  ${_capsa_svc}/log_service.cc
)

if(CAPSA_BUILD_TESTS)
  # Through the real supervisor: attached workers driven with the worker SDK
  # while the supervisor's loop runs on its own thread.
  add_executable(services_test
    ${_capsa_svc}/directory_service_test.cc
    ${_capsa_svc}/file_service_test.cc
    ${_capsa_svc}/log_service_test.cc
  )
  target_link_libraries(services_test PRIVATE capsa::supervisor capsa::worker capsa_test_schemas
                        capsa_test_support capsa_warnings GTest::gtest_main)
  gtest_discover_tests(services_test DISCOVERY_TIMEOUT 60)
endif()

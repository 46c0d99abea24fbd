# capsa::supervisor_core — the supervisor's foundations: the event loop
# (reactor), the audit log, and the fs.Directory path resolver with the
# per-grant rate limiter and byte budget. Depends only on capabilities
# (Fd, Result, sys) so it can be built and tested before the rest of the
# supervisor. Included from supervisor/CMakeLists.txt: include(foundation.cmake)
set(_capsa_sup ${CMAKE_CURRENT_LIST_DIR})
add_library(capsa_supervisor_core STATIC
  ${_capsa_sup}/reactor.cc
  ${_capsa_sup}/audit_log.cc
  ${_capsa_sup}/services/path_resolver.cc
  ${_capsa_sup}/services/directory.cc
  ${_capsa_sup}/services/rate_limit.cc
)
add_library(capsa::supervisor_core ALIAS capsa_supervisor_core)
target_include_directories(capsa_supervisor_core PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(capsa_supervisor_core PUBLIC capsa::capabilities Threads::Threads
                      PRIVATE capsa_warnings)
set_target_properties(capsa_supervisor_core PROPERTIES POSITION_INDEPENDENT_CODE ON)

if(CAPSA_BUILD_TESTS)
  add_executable(supervisor_core_test
    ${_capsa_sup}/reactor_test.cc
    ${_capsa_sup}/reactor_pool_test.cc
    ${_capsa_sup}/audit_log_test.cc
    ${_capsa_sup}/services/path_resolver_test.cc
    ${_capsa_sup}/services/directory_test.cc
    ${_capsa_sup}/services/rate_limit_test.cc
  )
  target_link_libraries(supervisor_core_test PRIVATE capsa::supervisor_core capsa_test_support
                        capsa_warnings GTest::gtest_main)
  gtest_discover_tests(supervisor_core_test DISCOVERY_TIMEOUT 60)
endif()

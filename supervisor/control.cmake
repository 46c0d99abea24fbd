# The control socket: `capsa audit`, `capsa revoke` (docs/SUPERVISOR.md,
# "Control socket"). Included from supervisor/CMakeLists.txt.
#
#   capsa_control_schema   control.fbs (capsa.control.Control + AuditReport)
#   capsa_control_client   the client side: paths, connect, Audit, Revoke
#                          (capabilities + schema only)
#   capsa_cli_control      `capsa audit` and `capsa revoke` (the client, CLI11,
#                          and supervisor_core for its JSON string escaping:
#                          no supervisor, sandbox or policy)
#   capsa_proc_fds         the kernel's view of who holds a port (/proc)
#   capsa_control          the server side (links capsa::supervisor)
set(_capsa_ctl ${CMAKE_CURRENT_LIST_DIR})

capsa_flatbuffers(capsa_control_schema SCHEMAS ${_capsa_ctl}/control.fbs)

add_library(capsa_control_client STATIC ${_capsa_ctl}/control_client.cc)
target_include_directories(capsa_control_client PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(capsa_control_client PUBLIC capsa::capabilities capsa_control_schema
                      PRIVATE capsa_warnings)

add_library(capsa_cli_control STATIC ${_capsa_ctl}/cli_audit.cc ${_capsa_ctl}/cli_revoke.cc)
target_include_directories(capsa_cli_control PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(capsa_cli_control PUBLIC capsa_control_client CLI11::CLI11
                      PRIVATE capsa::supervisor_core capsa_warnings)

add_library(capsa_proc_fds STATIC ${_capsa_ctl}/proc_fds.cc)
target_include_directories(capsa_proc_fds PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(capsa_proc_fds PUBLIC capsa::capabilities PRIVATE capsa_warnings)

if(CAPSA_BUILD_TESTS)
  add_executable(proc_fds_test ${_capsa_ctl}/proc_fds_test.cc)
  target_link_libraries(proc_fds_test PRIVATE capsa_proc_fds capsa_test_support capsa_warnings
                        GTest::gtest_main)
  add_dependencies(proc_fds_test capsa-run-unprivileged)
  # A second pass as uid 65534 when ctest runs as root: an unprivileged
  # supervisor must be able to read its own children's fds, and must be
  # told "denied" (not a wrong answer) for anyone else's.
  capsa_add_sandbox_test(proc_fds_test)
endif()

if(TARGET capsa_supervisor)
  add_library(capsa_control STATIC ${_capsa_ctl}/control_server.cc ${_capsa_ctl}/control_report.cc)
  target_include_directories(capsa_control PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(capsa_control PUBLIC capsa::supervisor capsa_control_client capsa_proc_fds
                        PRIVATE capsa_warnings)

  if(CAPSA_BUILD_TESTS)
    # A real sandboxed worker for control_sandbox_test, next to the test
    # binary. Runs under seccomp and RLIMIT_AS: never sanitized (a
    # sanitizer build provides an uninstrumented SDK copy).
    add_executable(control_test_worker ${_capsa_ctl}/control_test_worker.cc)
    target_link_libraries(control_test_worker PRIVATE
      $<IF:$<TARGET_EXISTS:capsa_worker_unsanitized>,capsa_worker_unsanitized,capsa::worker>
      capsa_warnings)
    target_compile_options(control_test_worker PRIVATE -fno-sanitize=all)
    target_link_options(control_test_worker PRIVATE -fno-sanitize=all)

    add_executable(control_server_test ${_capsa_ctl}/control_server_test.cc
                   ${_capsa_ctl}/control_sandbox_test.cc ${_capsa_ctl}/control_cli_test.cc)
    target_link_libraries(control_server_test PRIVATE capsa_control capsa_cli_control
                          capsa_test_schemas capsa_test_support capsa_warnings GTest::gtest_main)
    # control_cli_test runs the `capsa` binary, found next to the test.
    add_dependencies(control_server_test capsa-run-unprivileged capsa-launcher control_test_worker
                     capsa)
    # Also as uid 65534 (when ctest runs as root): an unprivileged
    # supervisor serves its control socket and checks its holders too.
    capsa_add_sandbox_test(control_server_test)
  endif()
endif()

# Installing capsa (`cmake --install <build> [--prefix DIR]`, and CPack's
# .deb), by GNUInstallDirs:
#
#   <bindir>/capsa                       the command line
#   <libexecdir>/capsa/capsa-launcher    the in-sandbox launcher; an installed
#                                        capsa finds it beside itself
#                                        (supervisor/cli/install_layout.h)
#   <libdir>/libcapsa_*.a                the libraries (static, PIC)
#   <includedir>/capsa/<folder>/*.h      public headers, included as in the
#                                        tree: "workers/sdk/builtins.h"
#   <includedir>/capsa/generated/*.h     flatc's headers for the schemas
#   <datadir>/capsa/schemas/*.fbs|.bfbs  the schemas, for tools and other languages
#   <libdir>/cmake/capsa/                find_package(capsa): capsa::worker,
#                                        capsa::capabilities, capsa::supervisor, ...
#   <libdir>/pkgconfig/capsa-worker.pc   the same for pkg-config users
#   <libdir>/pkgconfig/capsa-supervisor.pc
#
# Two export sets, so a plugin needs only what the worker SDK needs:
# capsaWorkerTargets (capabilities, interfaces, worker and their schemas:
# flatbuffers only) and capsaSupervisorTargets (the rest: also libseccomp,
# spdlog, fmt, nlohmann-json). capsaConfig.cmake loads the second when its
# dependencies are found, or fails when the `supervisor` component is asked
# for and they are not.
set(CAPSA_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/capsa)
set(CAPSA_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/capsa)
set(CAPSA_WORKER_SIDE_TARGETS capsa_capabilities capsa_envelope_schema capsa_interfaces
    capsa_interface_schemas capsa_worker)

# capsa_install_library(<target>): installs the static library <target>
# (capsa_<name>) and exports it as capsa::<name>, in the set above it belongs to.
function(capsa_install_library target)
  string(REGEX REPLACE "^capsa_" "" export_name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  if(target IN_LIST CAPSA_WORKER_SIDE_TARGETS)
    set(set capsaWorkerTargets)
  else()
    set(set capsaSupervisorTargets)
  endif()
  install(TARGETS ${target} EXPORT ${set}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
endfunction()

# Called once every library exists (from the top CMakeLists.txt).
function(capsa_install_package)
  install(TARGETS capsa RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(TARGETS capsa-launcher RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/capsa)

  # Public headers: every header of the library folders but test helpers.
  # The command line (supervisor/cli) is a program, not an API.
  foreach(dir capabilities capabilities/interfaces sandbox policy supervisor supervisor/reactor
              supervisor/audit supervisor/services supervisor/control workers/sdk)
    file(GLOB headers ${PROJECT_SOURCE_DIR}/${dir}/*.h)
    list(FILTER headers EXCLUDE REGEX "(_test|test_)[^/]*\\.h$")
    install(FILES ${headers} DESTINATION ${CAPSA_INSTALL_INCLUDEDIR}/${dir} COMPONENT dev)
  endforeach()

  foreach(set capsaWorkerTargets capsaSupervisorTargets)
    install(EXPORT ${set} NAMESPACE capsa:: DESTINATION ${CAPSA_INSTALL_CMAKEDIR} COMPONENT dev)
  endforeach()
  include(CMakePackageConfigHelpers)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/capsaConfig.cmake.in
    ${PROJECT_BINARY_DIR}/capsaConfig.cmake INSTALL_DESTINATION ${CAPSA_INSTALL_CMAKEDIR}
    PATH_VARS CMAKE_INSTALL_LIBEXECDIR CMAKE_INSTALL_DATADIR)
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/capsaConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/capsaConfig.cmake ${PROJECT_BINARY_DIR}/capsaConfigVersion.cmake
          DESTINATION ${CAPSA_INSTALL_CMAKEDIR} COMPONENT dev)

  # pkg-config: the prefix is found from the .pc file's own place, so a
  # tree installed with --prefix or DESTDIR elsewhere still works.
  file(RELATIVE_PATH CAPSA_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
  foreach(pc capsa-worker capsa-supervisor)
    configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
            COMPONENT dev)
  endforeach()
endfunction()

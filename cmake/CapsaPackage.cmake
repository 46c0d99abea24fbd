# CPack: `cpack -G DEB` in a build directory makes capsa_<version>_<arch>.deb,
# installing under /usr what cmake/CapsaInstall.cmake lists. One package,
# program and development files together (the libraries are static: there
# is no runtime library to split off). Dependencies are named by hand, the
# Debian 12 packages of what `capsa` links (checked with ldd) and runs
# (bubblewrap), so building the .deb needs no dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME capsa)
set(CPACK_PACKAGE_VENDOR "capsa")
set(CPACK_PACKAGE_CONTACT "capsa maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "capability-security sandbox runtime for untrusted workers")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "bubblewrap, libc6, libstdc++6, libseccomp2 (>= 2.5), libflatbuffers2, libspdlog1.10, libfmt9")
# To build plugins and hosts against it; graphviz for `capsa graph --format svg|png`.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libflatbuffers-dev, flatbuffers-compiler, graphviz")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libseccomp-dev, libspdlog-dev, libfmt-dev, nlohmann-json3-dev")
include(CPack)

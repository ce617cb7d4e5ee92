# The Debian package, pt_VERSION_ARCH.deb, built by CPack from the install
# rules of cmake/install.cmake (README, "Install from the .deb"):
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build-deb
#   cd build-deb && cpack -G DEB
# scripts/build-deb does this (tools only) and runs lintian on the result.
# The tools compile in their install paths (PT_SBINDIR), so the tree must be
# configured with the prefix the package installs to.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "pt developers <pt-devel@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "GPU passthrough recovery toolkit")
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the long text.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "pt moves a GPU and its companion functions (HDMI audio) between the host and
a virtual machine through vfio-pci and brings the GPU back healthy. One small
tool per concern: pt-bind (binding, journal, rollback, boot-time claims),
pt-reset (PCI resets), pt-vgaarb (the VGA arbiter's decodes), pt-console
(vtconsoles and firmware framebuffers) and pt-drm (DRM/KMS health).
.
Every mutating step is verified, journaled and rolled back on failure.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The udev, systemd and initramfs directories are absolute; DESTDIR keeps
# them inside the staging tree instead of the build machine's /.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
# Depends: computed by dpkg-shlibdeps from the binaries.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libkmod is opened with dlopen on first use (src/pt/modules.cpp), which
# dpkg-shlibdeps cannot see. Its dependency comes from the same record
# dpkg-shlibdeps would read: the shlibs file of the package that ships
# libkmod.so.2. CPack appends the computed Depends to this.
execute_process(COMMAND dpkg-query -S "*/libkmod.so.2" OUTPUT_VARIABLE pt_kmod_owner
                RESULT_VARIABLE pt_rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
if(pt_rc EQUAL 0 AND pt_kmod_owner MATCHES "^([^:,]+)")
  execute_process(COMMAND dpkg-query --control-show ${CMAKE_MATCH_1} shlibs
                  OUTPUT_VARIABLE pt_kmod_shlibs RESULT_VARIABLE pt_rc ERROR_QUIET)
  if(pt_rc EQUAL 0 AND pt_kmod_shlibs MATCHES "(^|\n)libkmod 2 ([^\n]+)")
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "${CMAKE_MATCH_2}")
  endif()
endif()
if(NOT CPACK_DEBIAN_PACKAGE_DEPENDS AND CMAKE_HOST_SYSTEM_NAME STREQUAL "Linux")
  find_program(pt_dpkg_query dpkg-query)
  if(pt_dpkg_query)
    message(WARNING "no shlibs record for libkmod.so.2 (apt-get install libkmod-dev): "
                    "the package would lack its libkmod dependency")
  endif()
endif()
# udev runs the rules; the initramfs hooks need one of the builders; pciutils
# carries pci.ids for class names.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "udev, pciutils")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "initramfs-tools | dracut, bash-completion")
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(pt_deb ${CMAKE_BINARY_DIR}/deb)
string(TIMESTAMP PT_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
foreach(script postinst postrm)
  configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/${script}.in ${pt_deb}/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                  WORLD_READ WORLD_EXECUTE)
endforeach()
configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/changelog.in ${pt_deb}/changelog @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${pt_deb}/postinst ${pt_deb}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Debian's documentation rules, applied to the staged tree only (a plain
# `cmake --install` keeps uncompressed pages): gzip -9n man pages, the
# copyright file and a changelog in /usr/share/doc/pt.
set(CPACK_PT_DEB_DIR ${pt_deb})
set(CPACK_PT_COPYRIGHT ${CMAKE_SOURCE_DIR}/packaging/deb/copyright)
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_SOURCE_DIR}/cmake/deb-stage.cmake)

include(CPack)

# package.deb (label package): the .deb built and linted by scripts/build-deb
# into BUILD/package/; vm-system.deb-install installs it in a booted system.
# A tree configured for another prefix packages from a tools-only tree
# beside it (BUILD/deb-build), since the tools compile in their paths.
find_program(LINTIAN lintian)
find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
if(LINTIAN AND DPKG_SHLIBDEPS)
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(pt_deb_build ${CMAKE_BINARY_DIR})
  else()
    set(pt_deb_build ${CMAKE_BINARY_DIR}/deb-build)
  endif()
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE PT_DEB_ARCH
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(PT_DEB_FILE ${CMAKE_BINARY_DIR}/package/pt_${PROJECT_VERSION}_${PT_DEB_ARCH}.deb)
  add_test(NAME package.deb COMMAND ${CMAKE_SOURCE_DIR}/scripts/build-deb ${pt_deb_build} ${CMAKE_BINARY_DIR}/package)
  set_tests_properties(package.deb PROPERTIES LABELS package FIXTURES_SETUP pt_deb TIMEOUT 1800)
endif()

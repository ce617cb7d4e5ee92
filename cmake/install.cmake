# Where `cmake --install` (and the Debian package) puts each file. Paths the
# system's own packages define come from their pkg-config files, with the
# distribution's usual place when the file is not installed.
include(GNUInstallDirs)

set(PT_SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})

function(pt_system_dir var module variable fallback)
  set(value "")
  if(PKG_CONFIG_FOUND)
    pkg_get_variable(value ${module} ${variable})
  endif()
  if(NOT value)
    set(value ${fallback})
  endif()
  set(${var} ${value} CACHE PATH "Where pt installs its ${module} files")
endfunction()

pt_system_dir(PT_UDEVDIR udev udevdir /usr/lib/udev)
pt_system_dir(PT_SYSTEMDUNITDIR systemd systemdsystemunitdir /usr/lib/systemd/system)
pt_system_dir(PT_DRACUTMODDIR dracut dracutmodulesdir /usr/lib/dracut/modules.d)
pt_system_dir(PT_BASHCOMPDIR bash-completion completionsdir ${CMAKE_INSTALL_FULL_DATADIR}/bash-completion/completions)
pt_system_dir(PT_CATALOGDIR systemd catalogdir /usr/lib/systemd/catalog)
set(PT_INITRAMFSTOOLSDIR /usr/share/initramfs-tools CACHE PATH "initramfs-tools' hooks and scripts")

# The tools link libpt statically: one package ships them together and the
# library makes no ABI promise yet (README, "Packaging").
foreach(tool IN LISTS PT_TOOLS)
  pt_tool_target(${tool} target)
  if(TARGET ${target})
    install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
  endif()
endforeach()

foreach(section 5 7 8)
  file(GLOB pages ${CMAKE_SOURCE_DIR}/man/*.${section})
  install(FILES ${pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

# Files that name the installed pt-bind.
set(dist ${CMAKE_BINARY_DIR}/dist)
foreach(in
    udev/61-pt.rules
    systemd/pt-recover@.service
    systemd/pt-boot.service
    systemd/pt-metrics.service
    initramfs/initramfs-tools/hooks/pt
    initramfs/initramfs-tools/scripts/init-top/pt
    initramfs/dracut/90pt/module-setup.sh
    initramfs/dracut/90pt/pt-boot.sh)
  configure_file(${CMAKE_SOURCE_DIR}/${in}.in ${dist}/${in} @ONLY)
endforeach()

install(FILES ${dist}/udev/61-pt.rules DESTINATION ${PT_UDEVDIR}/rules.d)
install(FILES ${dist}/systemd/pt-recover@.service ${dist}/systemd/pt-boot.service
              ${dist}/systemd/pt-metrics.service ${CMAKE_SOURCE_DIR}/systemd/pt-metrics.timer
        DESTINATION ${PT_SYSTEMDUNITDIR})
# The journal's texts for pt's MESSAGE_IDs (src/pt/journald.hpp); the
# package's trigger on the directory (or journalctl --update-catalog) compiles them.
install(FILES ${CMAKE_SOURCE_DIR}/systemd/pt.catalog DESTINATION ${PT_CATALOGDIR})
install(PROGRAMS ${dist}/initramfs/initramfs-tools/hooks/pt DESTINATION ${PT_INITRAMFSTOOLSDIR}/hooks)
install(PROGRAMS ${dist}/initramfs/initramfs-tools/scripts/init-top/pt
        DESTINATION ${PT_INITRAMFSTOOLSDIR}/scripts/init-top)
install(PROGRAMS ${dist}/initramfs/dracut/90pt/module-setup.sh ${dist}/initramfs/dracut/90pt/pt-boot.sh
        DESTINATION ${PT_DRACUTMODDIR}/90pt)
install(FILES ${CMAKE_SOURCE_DIR}/examples/pt.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Bash completion: one script for every tool, found by bash-completion's
# on-demand loader under each tool's name (completion/pt.bash).
install(FILES ${CMAKE_SOURCE_DIR}/completion/pt.bash DESTINATION ${PT_BASHCOMPDIR} RENAME pt)
foreach(tool IN LISTS PT_TOOLS)
  if(tool STREQUAL "pt")
    continue()  # the script itself
  endif()
  install(CODE "file(CREATE_LINK pt \"\$ENV{DESTDIR}${PT_BASHCOMPDIR}/${tool}\" SYMBOLIC)")
endforeach()

# The hypervisor hooks (contrib/README.md): installed as examples to copy into
# place (/var/lib/vz/snippets, /etc/libvirt/hooks), never activated by install.
install(PROGRAMS ${CMAKE_SOURCE_DIR}/contrib/proxmox/pt-hookscript DESTINATION ${CMAKE_INSTALL_DATADIR}/pt/contrib/proxmox)
install(PROGRAMS ${CMAKE_SOURCE_DIR}/contrib/libvirt/qemu DESTINATION ${CMAKE_INSTALL_DATADIR}/pt/contrib/libvirt)
install(FILES ${CMAKE_SOURCE_DIR}/contrib/proxmox/proxmox-hook.conf ${CMAKE_SOURCE_DIR}/contrib/libvirt/libvirt-hook.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${CMAKE_SOURCE_DIR}/contrib/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/contrib)

# deb-install.sh (vm-system): the Debian package on a booted bookworm system
# that never had pt. `apt install ./pt_*.deb` installs it (its runtime
# libraries are already in the root, so apt needs no network), the postinst
# rebuilds the initramfs because pt.conf claims a device at boot, the tools
# run. `dpkg -r pt` removes every file `dpkg -L pt` listed and rebuilds the
# initramfs without pt; /etc/pt/pt.conf (the admin's, not a conffile) and a
# generated /etc/udev/rules.d/61-pt.rules stay until `dpkg --purge pt`,
# which removes the generated rules and leaves pt.conf.
. /pt-vm/lib.sh

# live WHAT CMD...: CMD's output as it comes (an initramfs build takes
# minutes under TCG), kept in $OUT; its status in $RC.
live() {
  LAST_CMD="$*"
  echo "\$ $LAST_CMD"
  { "$@"; echo $? >/tmp/live.rc; } 2>&1 | tee /tmp/live.out | sed 's/^/  | /'
  RC=$(cat /tmp/live.rc) OUT=$(cat /tmp/live.out)
  echo "  -> exit $RC"
}

deb=$(ls /pt-vm/pt_*_amd64.deb)
say "installing $deb"
! command -v pt-bind >/dev/null || fail "pt before the install" "not installed" "$(command -v pt-bind)"
[ -S /run/udev/control ] || fail "udevd" "running (its control socket)" "no /run/udev/control"
# The initramfs of the running system only (MODULES=dep), not every module:
# the maintainer scripts' update-initramfs then takes a minute under TCG, not
# ten. pt's hook adds vfio-pci itself, which boot-check verifies.
sed -i 's/^MODULES=.*/MODULES=dep/' /etc/initramfs-tools/initramfs.conf
cd /pt-vm || fail "cd /pt-vm"
live env DEBIAN_FRONTEND=noninteractive apt install -y --no-install-recommends "./${deb##*/}"
assert_eq "exit status of apt install" 0 "$RC"
cd /
assert_out_lacks "pt: udevadm control --reload-rules failed"
# update-initramfs defers to initramfs-tools' trigger inside dpkg.
assert_out_has "update-initramfs"
assert_eq "package status" "install ok installed" "$(dpkg-query -W -f='${Status}' pt)"

say "the tools"
expect_rc 0 pt-bind --version
assert_out_has "pt-bind"
for t in pt-reset pt-vgaarb pt-console pt-drm; do
  expect_rc 0 "$t" --version
done
expect_rc 0 pt-bind list
assert_out_has "0000:01:00.0"
expect_rc 0 pt-drm list
for page in man8/pt-bind.8.gz man8/pt-reset.8.gz man8/pt-vgaarb.8.gz man8/pt-console.8.gz man8/pt-drm.8.gz \
  man7/pt.7.gz man5/pt.conf.5.gz; do
  [ -s "/usr/share/man/$page" ] || fail "man page $page" "installed" "missing"
  gzip -t "/usr/share/man/$page" || fail "man page $page" "gzip" "corrupt"
done
[ -L /usr/share/bash-completion/completions/pt-bind ] || fail "bash completion for pt-bind" "a link" "missing"
say "boot-check: the postinst's update-initramfs put pt in the initramfs"
expect_rc 0 pt-bind boot-check
assert_out_has "pt.conf inside is current"

say "files of the package"
dpkg -L pt >/tmp/pt.list
# Directories are shared (/lib is a link to usr/lib on a merged-/usr system);
# the package's own ones are checked after the removal.
files=$(while read -r f; do [ -d "$f" ] || echo "$f"; done </tmp/pt.list)
n=$(echo "$files" | wc -l)
say "$n files and links"
[ "$n" -ge 20 ] || fail "dpkg -L pt" "at least 20 files" "$n"
pt-bind udev-rules >/etc/udev/rules.d/61-pt.rules
echo "# the admin's own rule" >/etc/udev/rules.d/62-admin.rules

say "dpkg -r pt"
live dpkg -r pt
assert_eq "exit status of dpkg -r pt" 0 "$RC"
left=$(for f in $files; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done)
[ -z "$left" ] || fail "files left by dpkg -r" "none" "$left"
for d in /usr/share/doc/pt /usr/lib/dracut/modules.d/90pt; do
  [ ! -e "$d" ] || fail "$d after dpkg -r" "gone" "present"
done
hash -r # the shell remembers where it found pt-bind
! command -v pt-bind >/dev/null || fail "pt-bind after dpkg -r" "not on PATH" "$(command -v pt-bind)"
assert_eq "package status after -r" "deinstall ok config-files" "$(dpkg-query -W -f='${Status}' pt)"
say "the postrm rebuilt the initramfs without pt"
if lsinitramfs "/boot/initrd.img-$(uname -r)" | grep -E 'pt-bind|scripts/init-top/pt$'; then
  fail "the initramfs after dpkg -r" "no pt-bind, no pt hook" "the lines above"
fi
[ -f /etc/pt/pt.conf ] || fail "/etc/pt/pt.conf after dpkg -r" "kept (the admin's file)" "gone"
[ -f /etc/udev/rules.d/61-pt.rules ] || fail "generated 61-pt.rules after dpkg -r" "kept until purge" "gone"

say "dpkg --purge pt"
expect_rc 0 dpkg --purge pt
[ ! -e /etc/udev/rules.d/61-pt.rules ] || fail "generated 61-pt.rules after purge" "gone" "present"
[ -f /etc/udev/rules.d/62-admin.rules ] || fail "the admin's 62-admin.rules after purge" "kept" "gone"
[ -f /etc/pt/pt.conf ] || fail "/etc/pt/pt.conf after purge" "kept (the admin's file, pt.conf(5))" "gone"
if dpkg-query -W -f='${Status}' pt 2>/dev/null | grep -q .; then
  fail "dpkg's record of pt after purge" "none" "$(dpkg-query -W -f='${Status}' pt)"
fi
pass

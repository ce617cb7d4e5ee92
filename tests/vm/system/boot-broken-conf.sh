# boot-broken-conf.sh (vm-system): a pt.conf with an unknown key makes the
# initramfs hook skip pt with a message that names file:line:column; the
# machine boots and the GPU stays with its host driver.
. /pt-vm/lib.sh

assert_eq "PID 1" systemd "$(cat /proc/1/comm)"
systemctl is-system-running >/tmp/state 2>&1 || true
say "system state: $(cat /tmp/state)"
assert_driver "$GPU" virtio-pci
assert_override "$GPU" "(null)"
dmesg >/tmp/dmesg
grep "pt-bind boot:" /tmp/dmesg || fail "pt-bind boot lines in dmesg" "the hook's error" "none"
grep -q "pt-bind boot: .*/etc/pt/pt.conf:5:1: unknown key 'companion' in \[device.gpu\]" /tmp/dmesg ||
  fail "the hook's message" "/etc/pt/pt.conf:5:1: unknown key 'companion' in [device.gpu]" "$(grep 'pt-bind boot' /tmp/dmesg)"
[ ! -e /run/pt/journal.json ] || fail "/run/pt/journal.json" "absent: nothing was claimed" "$(cat /run/pt/journal.json)"
pass

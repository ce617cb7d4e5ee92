# boot-claim.sh (vm-system): the distribution's initramfs, built with pt's
# hook, claims the GPU and its audio for vfio-pci before udev starts, so no
# display driver ever probes them; systemd then boots normally.
. /pt-vm/lib.sh

say "kernel $(uname -r), PID 1 is $(cat /proc/1/comm)"
assert_eq "PID 1" systemd "$(cat /proc/1/comm)"
assert_driver "$GPU" vfio-pci
assert_driver "$AUD" vfio-pci
assert_override "$GPU" vfio-pci
assert_override "$AUD" vfio-pci
assert_vfio_node "$GPU"

dmesg >/tmp/dmesg
say "pt's lines in the kernel log"
grep "pt-bind boot:" /tmp/dmesg || fail "pt-bind boot lines in dmesg" "the initramfs hook's output" "none"
claim=$(grep -n "pt-bind boot: 0000:01:00.0" /tmp/dmesg | head -n1 | cut -d: -f1)
root=$(grep -n "EXT4-fs (vda): mounted" /tmp/dmesg | head -n1 | cut -d: -f1)
say "claimed at dmesg line $claim, root mounted at line $root"
[ -n "$claim" ] && [ -n "$root" ] && [ "$claim" -lt "$root" ] ||
  fail "order of the claim and the root mount" "the claim in the initramfs, before the root is mounted" \
    "claim at line ${claim:-none}, root at line ${root:-none}"
if grep -E "virtio-vga detected at $GPU|virtio_gpu.*$GPU|virtio-pci $GPU" /tmp/dmesg; then
  fail "display drivers on $GPU" "none ever probed it" "the lines above"
fi
grep -q "Initialized bochs-drm" /tmp/dmesg || fail "the host display" "bochs-drm initialized" "$(grep -i drm /tmp/dmesg)"

say "the journal under /run/pt (it moved from the initramfs)"
cat /run/pt/journal.json
grep -q '"boot": true' /run/pt/journal.json || fail "journal entries" "boot claims" "$(cat /run/pt/journal.json)"

say "boot-check: the initramfs holds pt, pt.conf and vfio-pci, and is current"
expect_rc 0 pt-bind boot-check
echo "$OUT"
assert_out_has "pt.conf inside is current"
assert_out_has "module vfio-pci is inside"
echo "# edited after the initramfs was built" >>/etc/pt/pt.conf
expect_rc 1 pt-bind boot-check
echo "$OUT"
assert_out_has "problem: the initramfs holds an older /etc/pt/pt.conf: run"

say "the claim in systemd's journal"
journalctl -b -k --no-pager | grep "pt-bind boot" | head -n 5
pass

# console-bad-input.sh (default topology): pt-console refuses what it cannot
# do, with the documented exit status, and changes nothing:
#   2  a non-display device, a slot, a malformed address, an unknown console
#      or framebuffer name for bind/unbind, a VT number outside 1..63
#   1  a PCI device that does not exist; unbinding fbcon when no other
#      console driver is registered (the kernel ignores the write; pt reads
#      it back and says why)
# Here fbcon maps every console to the host display's fb (bochs), not to the
# GPU's: release 01:00.0 leaves fbcon bound and says so.
. /pt-vm/lib.sh

state() {
  vtconsoles
  ls /sys/class/graphics
  console_journal "$GPU"
  driver_of "$GPU"
}
before=$(state)
echo "$before"

say "refused as usage errors (exit 2)"
expect_rc 2 pt-console release "$AUD"
assert_out_has "not a display controller"
assert_out_has "'$AUD'"
expect_rc 2 pt-console restore "$SLOT"
assert_out_has "names a slot"
expect_rc 2 pt-console release 1:2:3
expect_rc 2 pt-console bind "no such console"
assert_out_has "'no such console'"
assert_out_has "'frame buffer device'"
expect_rc 2 pt-console unbind efi-framebuffer.7
for n in 0 64 -1 two 2x; do
  expect_rc 2 pt-console vt "$n"
  assert_out_has "from 1 to 63"
done
expect_rc 2 pt-console
expect_rc 2 pt-console release
assert_eq "state after the usage errors" "$before" "$(state)"

say "refused as failures (exit 1)"
expect_rc 1 pt-console release 0000:07:00.0
assert_out_has "no such PCI device"
assert_eq "state after the failures" "$before" "$(state)"

say "release leaves fbcon alone when it maps no console to the GPU"
expect_rc 0 pt-console release "$GPU"
assert_out_has "fbcon maps no console to $GPU"
assert_out_has "nothing to release"
assert_eq "state after a release with nothing to do" "$before" "$(state)"

say "fbcon is the only console driver: the kernel ignores its unbind, pt says so"
[ "$(ls /sys/class/vtconsole | wc -l)" = 1 ] || skip "more than one vtconsole here: $(vtconsoles | tr '\n' ';')"
expect_rc 1 pt-console unbind "frame buffer device"
assert_out_has "reads back \"1\""
assert_out_has "no other console driver is registered"
assert_vtcon_bind "frame buffer device" 1
assert_eq "state after the refused unbind" "$before" "$(state)"
pass

# vgaarb-bad-input.sh: a non-VGA function, a missing device, malformed
# addresses and decodes values such as "io mem" (which the kernel itself
# would take as io+mem) and "all" are refused with the documented exit code,
# and the arbiter's lines stay as they were.
. /pt-vm/lib.sh

boot=$(boot_vga_device)
lines() { echo "$(arb_line "$boot")|$(arb_line "$GPU")"; }
before=$(lines)
snap=$(snapshot)
unchanged() {
  assert_eq "arbiter lines after: $1" "$before" "$(lines)"
  assert_snapshot "$1" "$snap"
  [ ! -e "$PT_JOURNAL" ] || fail "journal after: $1" "none" "$(journal_text)"
}

say "a function that is not VGA: its class named, exit 1"
expect_rc 1 pt-vgaarb decodes "$AUD" none
assert_out_has "class 0403"
unchanged "decodes $AUD"
expect_rc 1 pt-vgaarb restore "$AUD"
unchanged "restore $AUD"
expect_rc 1 pt-vgaarb lock "$AUD" -- true
unchanged "lock $AUD"
expect_rc 1 pt-vgaarb show "$AUD"
assert_out_has "class 0403"

say "a device that does not exist: exit 1"
expect_rc 1 pt-vgaarb decodes 05:00.0 none
assert_out_has "no such PCI device"
expect_rc 1 pt-vgaarb restore 05:00.0
unchanged "missing 05:00.0"

say "decodes values: exit 2, the valid ones listed"
for v in "io mem" all IO ""; do
  expect_rc 2 pt-vgaarb decodes "$GPU" "$v"
  assert_out_has "give one of none, io, mem or io+mem"
  unchanged "decodes '$v'"
done
expect_rc 2 pt-vgaarb lock "$GPU" none -- true
unchanged "lock none"
expect_rc 2 pt-vgaarb lock "$GPU"
expect_rc 2 pt-vgaarb decodes zz:00.0 none
assert_out_has "'zz:00.0'"
expect_rc 2 pt-vgaarb decodes "$GPU"
expect_rc 2 pt-vgaarb list -- true
unchanged "usage errors"
pass

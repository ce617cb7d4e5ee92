# bind-chipset.sh: q35's chipset slot 00:1f (1f.0 ICH9 LPC bridge, 1f.2
# AHCI, 1f.3 SMBus) shares one IOMMU group. Detaching the SMBus alone must
# not take the SATA controller or the LPC bridge along: --dry-run and the
# real detach refuse (exit 1), name the other functions with their drivers,
# and change nothing (drivers as they were, no journal). Bridges (class
# 06xx: the host bridge 00:00.0, the LPC bridge 00:1f.0) are refused by name.
. /pt-vm/lib.sh

LPC=0000:00:1f.0
SATA=0000:00:1f.2
SMBUS=0000:00:1f.3
HOST=0000:00:00.0

for m in lpc_ich ahci i2c_i801; do
  modprobe "$m" || fail "modprobe $m" "loaded" "failed (is it in pt-vm's EXTRA_MODULES?)"
done
for d in $LPC $SATA $SMBUS; do
  wait_for "[ -e /sys/bus/pci/devices/$d/driver ]" 10 ||
    fail "driver of $d" "bound" "$(driver_of $d)"
done
say "00:1f: $(for d in $LPC $SATA $SMBUS; do printf '%s=%s (group %s, class %s) ' "$d" "$(driver_of $d)" "$(group_of $d)" "$(cat /sys/bus/pci/devices/$d/class)"; done)"
assert_driver $LPC lpc_ich
assert_driver $SATA ahci
assert_driver $SMBUS i801_smbus
[ "$(group_of $SMBUS)" = "$(group_of $SATA)" ] && [ "$(group_of $SMBUS)" = "$(group_of $LPC)" ] ||
  fail "IOMMU groups of 00:1f" "one group" "$(group_of $LPC) $(group_of $SATA) $(group_of $SMBUS)"

chipset_state() {
  for d in $HOST $LPC $SATA $SMBUS; do
    echo "$d driver=$(driver_of $d) override=$(override_of $d)"
  done
}
BEFORE=$(chipset_state)
unchanged() {
  _now=$(chipset_state)
  [ "$_now" = "$BEFORE" ] || fail "$1: state changed" "$(echo "$BEFORE" | tr '\n' ';')" "$(echo "$_now" | tr '\n' ';')"
  [ ! -e "$PT_JOURNAL" ] || fail "$1: journal" "none" "$(journal_text | tr -d '\n' | cut -c1-300)"
}

for dry in --dry-run ""; do
  say "pt-bind $dry detach 00:1f.3: refused, the SATA controller and the LPC bridge named"
  expect_rc 1 pt-bind $dry detach 00:1f.3
  assert_out_has "$SMBUS: its IOMMU group also holds $LPC (lpc_ich, class 0601), a bridge that pt never unbinds"
  assert_out_has "$SATA (ahci), which you did not name"
  assert_out_lacks "write "
  unchanged "$dry detach 00:1f.3"
done

say "--force-group cannot move a bridge either"
expect_rc 1 pt-bind detach --force-group 00:1f.3
assert_out_has "$LPC (lpc_ich, class 0601)"
unchanged "detach --force-group 00:1f.3"

say "bridges named directly: the host bridge and the LPC bridge"
expect_rc 1 pt-bind detach 00:00.0
assert_out_has "$HOST: is a bridge (class 0600)"
expect_rc 1 pt-bind detach 00:1f.0
assert_out_has "$LPC: is a bridge (class 0601)"
unchanged "detach of a bridge"
pass

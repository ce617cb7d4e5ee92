# bind-bad-input.sh: bad addresses, missing devices, bridges and unknown
# drivers are refused before anything changes.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)

unchanged() {
  assert_snapshot "$1" "$before"
  assert_journal_clean
}

say "malformed addresses: usage errors"
expect_rc 2 pt-bind detach zz:00.0
assert_out_has "'zz:00.0'"
unchanged "malformed zz:00.0"
expect_rc 2 pt-bind detach 1:2:3:4
assert_out_has "1:2:3:4"
unchanged "malformed 1:2:3:4"
expect_rc 2 pt-bind detach
unchanged "no device"
expect_rc 2 pt-bind no-such-command "$SLOT"
unchanged "unknown command"

say "a device that does not exist"
expect_rc 1 pt-bind detach 05:00.0
assert_contains "output of '$LAST_CMD'" "no such" "$(printf '%s' "$OUT" | tr 'A-Z' 'a-z')"
unchanged "missing 05:00.0"

bridge=$(parent_of "$GPU")
[ -n "$bridge" ] || fail "parent of $GPU" "a PCIe root port" "none"
bridge_driver=$(driver_of "$bridge")
say "the root port above the GPU: $bridge ($bridge_driver)"
expect_rc 1 pt-bind detach "$bridge"
assert_out_has "${bridge#0000:}"
unchanged "bridge $bridge"
assert_driver "$bridge" "$bridge_driver"

say "an unknown target driver"
expect_rc 1 pt-bind detach "$SLOT" --to no_such_driver
assert_out_has no_such_driver
unchanged "--to no_such_driver"
pass

# bind-dry-run.sh: --dry-run prints the plan and changes nothing, for detach
# and for attach.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)

say "dry-run detach"
expect_rc 0 pt-bind --dry-run detach "$SLOT"
assert_out_has driver_override
assert_out_has unbind
assert_out_has drivers_probe
assert_out_has "$AUD"
assert_out_has "$GPU"
assert_snapshot "after --dry-run detach" "$before"
assert_journal_clean

say "dry-run as a trailing option, and as JSON"
expect_rc 0 pt-bind detach "$SLOT" --dry-run
assert_out_has drivers_probe
assert_snapshot "after detach --dry-run" "$before"
expect_rc 0 pt-bind --json --dry-run detach "$SLOT"
if command -v jq >/dev/null; then
  printf '%s\n' "$OUT" | jq -e . >/dev/null 2>&1 || fail "--json --dry-run output" "valid JSON" "$OUT"
fi
assert_snapshot "after --json --dry-run detach" "$before"
assert_journal_clean

say "real detach, then dry-run attach"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
detached=$(snapshot)
journal=$(cat "$PT_JOURNAL")
expect_rc 0 pt-bind --dry-run attach "$SLOT"
assert_out_has driver_override
assert_out_has unbind
assert_out_has drivers_probe
assert_snapshot "after --dry-run attach" "$detached"
assert_detached
assert_eq "journal after --dry-run attach" "$journal" "$(cat "$PT_JOURNAL")"

say "real attach"
expect_rc 0 pt-bind attach "$SLOT"
assert_attached
assert_snapshot "after the real attach" "$before"
pass

# journal-records.sh (vm-system): every change pt makes reaches systemd's
# journal as a structured record (src/pt/journald.hpp): a MESSAGE_ID per
# kind of event, PT_BDF, PT_STEP, PT_RESULT and PT_EXIT, read back with
# journalctl -o json; a run that changed something ends with a `command`
# record; pt.catalog explains each id (journalctl -x).
. /pt-vm/lib.sh

BIND=98b470185afa48fd8203bb10038a19b9
RECOVER_STEP=e2394d9cfd564b209c03e43df7d7d10f
VGAARB=b9c3dce01f7443a9a2fd9aba175d3322
COMMAND=9b85f776526f4672ad554159b97538af
gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
unit=pt-recover@$gpu.service

# records MATCH...: the boot's journal entries matching every journalctl
# MATCH (FIELD=VALUE), one JSON object a line.
records() { journalctl -b -o json --no-pager "$@" 2>/dev/null; }
# has_field FIELD VALUE: stdin holds an entry with FIELD equal to VALUE.
has_field() { grep -q "\"$1\" *: *\"$2\""; }
# expect_record WHAT FIELD=VALUE... [-- FIELD VALUE...]: an entry matching
# the journalctl matches appears within 20 s, and it holds each FIELD VALUE.
expect_record() {
  local what=$1 matches="" out
  shift
  # The matches hold no spaces (ids, addresses, words): one string, split
  # again where it is used.
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    matches="$matches $1"
    shift
  done
  [ "${1:-}" = -- ] && shift
  wait_for "[ -n \"\$(journalctl -b -o json --no-pager $matches 2>/dev/null)\" ]" 20 ||
    fail "$what" "a journal record with$matches" "$(records -n 5 SYSLOG_IDENTIFIER=pt-bind)"
  # shellcheck disable=SC2086
  out=$(records $matches)
  while [ $# -gt 1 ]; do
    printf '%s\n' "$out" | has_field "$1" "$2" || fail "$what: $1" "$2" "$out"
    shift 2
  done
  say "$what: $(printf '%s\n' "$out" | wc -l) record(s) with$matches"
}

assert_driver "$GPU" vfio-pci

say "pt-bind attach $SLOT: the move back to the host drivers"
expect_rc 0 pt-bind attach "$SLOT"
assert_driver "$GPU" virtio-pci
expect_record "the GPU's unbind from vfio-pci" MESSAGE_ID=$BIND PT_BDF="$gpu" PT_STEP=unbind \
  -- PT_RESULT ok PT_EXIT 0 PT_DRIVER vfio-pci SYSLOG_IDENTIFIER pt-bind PT_EVENT bind PRIORITY 6
expect_record "the audio function's unbind" MESSAGE_ID=$BIND PT_BDF="$aud" PT_STEP=unbind -- PT_RESULT ok
expect_record "the end of the attach" MESSAGE_ID=$COMMAND SYSLOG_IDENTIFIER=pt-bind PT_EXIT=0 \
  PT_BDF="$aud" -- PT_RESULT ok
# One PT_BDF field per function it changed: journalctl shows them as a list.
records MESSAGE_ID=$COMMAND PT_BDF="$gpu" | grep -q "\"PT_BDF\" *: *\[\"$gpu\",\"$aud\"\]" ||
  fail "PT_BDF of the attach's end" "[\"$gpu\",\"$aud\"]" "$(records MESSAGE_ID=$COMMAND)"

say "the recovery udev starts (pt-recover@): one record per step"
wait_for "[ -n \"\$(systemctl show -p InvocationID --value $unit)\" ]" 120 ||
  fail "$unit" "started by udev" "$(systemctl status --no-pager "$unit" 2>&1)"
wait_for "! systemctl show -p ActiveState --value $unit | grep -qx activating" 180 ||
  fail "$unit" "finished" "$(systemctl status --no-pager "$unit" 2>&1)"
for step in attach drm-wait vgaarb console drm-check; do
  expect_record "recovery step $step" MESSAGE_ID=$RECOVER_STEP PT_STEP=$step PT_BDF="$gpu" \
    -- PT_RESULT ok PT_EXIT 0 PT_UNIT "$gpu"
done
records MESSAGE_ID=$VGAARB | head -n 3

say "a move that fails and is rolled back: its writes, then an error record with exit 3"
# virtio-pci does not take the HDA function: drivers_probe succeeds and
# binds nothing, pt's check finds it and rolls back (no write fails; a
# failed write's record is a unit test's).
expect_rc 3 pt-bind detach "$SLOT" --to virtio-pci
expect_record "the end of the refused detach" MESSAGE_ID=$COMMAND PT_EXIT=3 -- PT_RESULT failed PRIORITY 3
records MESSAGE_ID=$COMMAND PT_EXIT=3 | grep -q '"MESSAGE" *: *"pt-bind: finished, exit 3 after [0-9]* change(s) to .*: ' ||
  fail "the message of the refused detach's end" "the changes and pt-bind's error" "$(records MESSAGE_ID=$COMMAND PT_EXIT=3)"
assert_driver "$GPU" virtio-pci

say "read-only commands leave no record"
n=$(records MESSAGE_ID=$COMMAND | wc -l)
expect_rc 0 pt-bind list
expect_rc 0 pt status "$SLOT"
sleep 1
assert_eq "command records after pt-bind list and pt status" "$n" "$(records MESSAGE_ID=$COMMAND | wc -l)"

say "the catalog explains each id (journalctl -x)"
# cmake --install put pt.catalog in place; the package's trigger compiles it
# on a real install, here it is done by hand.
journalctl --update-catalog
journalctl --list-catalog | grep -q "$COMMAND" || fail "journalctl --list-catalog" "$COMMAND" "$(journalctl --list-catalog | grep -i pt)"
out=$(journalctl -b -x --no-pager MESSAGE_ID=$COMMAND PT_EXIT=3)
printf '%s\n' "$out"
assert_contains "journalctl -x of the refused detach" "pt-bind finished with exit status 3" "$out"
assert_contains "journalctl -x of the refused detach" "failed and rolled back" "$out"
pass

# bind-rollback.sh: a move that fails part-way is rolled back (exit 3): both
# functions end on their original drivers, overrides cleared, journal clean.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)

say "(a) virtio-pci refuses the Intel HDA function"
expect_rc 3 timeout 60 pt-bind detach "$SLOT" --to virtio-pci
assert_out_has "$AUD"
assert_attached
assert_snapshot "after the refused --to virtio-pci" "$before"

say "(b) drivers_probe of the GPU fails once, after the audio function moved"
[ -f /lib/pt-fault.so ] || fail "fault-injection shim" "/lib/pt-fault.so in the guest" "missing (build target pt-fault)"
# @1: a transient fault; the rollback's own drivers_probe of the GPU succeeds.
expect_rc 3 timeout 60 env LD_PRELOAD=/lib/pt-fault.so PT_FAULT_VERBOSE=1 \
  PT_FAULT="/sys/bus/pci/drivers_probe=$GPU:EIO@1" pt-bind detach "$SLOT"
assert_out_has "pt-fault: failing write to /sys/bus/pci/drivers_probe"
assert_out_has "/sys/bus/pci/drivers_probe"
case $(printf '%s' "$OUT" | tr 'A-Z' 'a-z') in
  *"roll"*) ;;
  *) fail "output of '$LAST_CMD'" "a word about the rollback" "$OUT" ;;
esac
assert_attached
assert_snapshot "after the injected EIO" "$before"

say "(c) drivers_probe of the GPU keeps failing, the rollback's too"
# The rollback cannot re-probe the GPU through drivers_probe, so it binds the
# original driver through its own bind file: still exit 3, nothing left over.
expect_rc 3 timeout 60 env LD_PRELOAD=/lib/pt-fault.so \
  PT_FAULT="/sys/bus/pci/drivers_probe=$GPU:EIO" pt-bind -v detach "$SLOT"
assert_out_has "/sys/bus/pci/drivers_probe"
assert_out_has "write /sys/bus/pci/drivers/$GPU_DRIVER/bind \"$GPU\""
assert_attached
assert_journal_clean
assert_snapshot "after the persistent EIO and recovery" "$before"

say "nothing left behind: a plain cycle still works"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
expect_rc 0 pt-bind attach "$SLOT"
assert_attached
pass

# pt-vm: topology=doubles
# bind-stuck-kill.sh: pt-bind itself is SIGKILLed while its writer child is
# stuck in the nvidia double's nv_pci_remove() (a process holds
# /dev/nvidia0). Nothing recorded the writer: the next attach finds it by its
# open descriptor on the driver's unbind file (as /proc/PID/fd names it),
# records it in the journal's job, refuses with exit 5 and keeps the job.
# Once the holder exits and the unbind completes, attach restores the
# original drivers and only then clears the journal: no orphaned function.
. /pt-vm/lib.sh

doubles_setup
gpu=$(full_bdf "$GPU")
node=$(nv_node "$gpu")
unbind=/sys/bus/pci/drivers/$NV_DRIVER/unbind
hold_open "$node"
holder=$HOLDER
# Lets go of the holder should anything block, so the guest still finishes.
(sleep 90; kill "$holder" 2>/dev/null) &
watchdog=$!

say "pt-bind --timeout 30 detach in the background, its writer stuck in the unbind"
pt-bind --timeout 30 detach --force "$SLOT" >/tmp/detach.out 2>&1 &
ptbind=$!
# The writer: the process, other than pt-bind, with the unbind file open.
find_writer() {
  for _fd in /proc/[0-9]*/fd/*; do
    [ "$(readlink "$_fd" 2>/dev/null)" = "$unbind" ] || continue
    _p=${_fd#/proc/}
    _p=${_p%%/*}
    [ "$_p" != "$ptbind" ] && [ "$_p" != "$$" ] && { echo "$_p"; return 0; }
  done
  return 1
}
wait_for "find_writer >/dev/null" 15 || fail "writer of $unbind" "a child with it open" \
  "none; $(cat /tmp/detach.out)"
writer=$(find_writer)
say "writer pid $writer, wchan $(cat "/proc/$writer/wchan" 2>/dev/null)"
# What the real kernel shows for a sysfs attribute: the match depends on it.
for fd in /proc/"$writer"/fd/*; do
  say "  $fd -> $(readlink "$fd")"
done
assert_eq "job in the journal before the kill" detach "$(jq -r '.job.op' "$PT_JOURNAL")"
assert_eq "writer recorded before the kill" null "$(jq -r '.job.stuck_write.writer // null' "$PT_JOURNAL")"

say "SIGKILL pt-bind itself; the writer survives in the kernel"
kill -KILL "$ptbind"
wait "$ptbind" 2>/dev/null
[ -e "/proc/$writer" ] || fail "writer $writer after pt-bind was killed" "still in the kernel" "gone"
# The kernel drops the driver link before the driver's remove() runs: only
# the journal's original driver names the unbind file now.
assert_eq "driver of $gpu while the unbind is stuck" none "$(driver_of "$gpu")"

say "attach finds the writer, refuses (exit 5) and keeps the job"
expect_rc 5 timeout 30 pt-bind --lock-timeout 5 attach "$SLOT"
assert_out_has "writer pid $writer"
assert_out_has "$unbind"
assert_out_has "still blocked in the kernel"
assert_eq "journal: the recorded writer" "$writer" "$(jq -r '.job.stuck_write.writer' "$PT_JOURNAL")"
assert_eq "journal: the job" detach "$(jq -r '.job.op' "$PT_JOURNAL")"
assert_eq "journal: original driver of $gpu" "$NV_DRIVER" \
  "$(jq -r --arg d "$gpu" '.devices[$d].driver' "$PT_JOURNAL")"
journal_before=$(cat "$PT_JOURNAL")
expect_rc 5 timeout 30 pt-bind --dry-run attach "$SLOT"
expect_rc 5 timeout 30 pt-bind --lock-timeout 5 attach "$SLOT"
assert_eq "journal after the second refused attach" "$journal_before" "$(cat "$PT_JOURNAL")"

say "the holder exits: the unbind completes, attach restores the original drivers"
kill "$watchdog" 2>/dev/null
release
wait_for "[ ! -e /proc/$writer ]" 15 || fail "writer $writer after the holder exited" "gone" "still there"
assert_eq "driver of $gpu after the unbind completed" none "$(driver_of "$gpu")"
assert_eq "journal: the job after the unbind completed" detach "$(jq -r '.job.op' "$PT_JOURNAL")"
expect_rc 0 timeout 60 pt-bind attach "$SLOT"
assert_out_has "interrupted detach"
assert_driver "$gpu" "$NV_DRIVER"
assert_driver "$AUD" "$HDA_DRIVER"
assert_journal_clean
pass

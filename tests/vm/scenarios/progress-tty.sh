# pt-vm: topology=doubles
# progress-tty.sh: on a terminal, a wait prints a progress line on stderr
# (pt(7), "Progress on a terminal"); elsewhere nothing. A detach whose
# unbind blocks in the nvidia double's nv_pci_remove() while a process holds
# /dev/nvidiaN, run under a pseudo-terminal (pt-vm-pty), shows "waiting for
# nvidia to release ... (unbind)" until the holder exits, then clears it. An
# attach while another process holds the pt lock (util-linux flock) shows
# "waiting for the pt lock (held by pid N)". The same runs with stderr on a
# pipe print no progress text.
. /pt-vm/lib.sh

doubles_setup
gpu=$(full_bdf "$GPU")
node=$(nv_node "$gpu")
cr=$(printf '\r')

say "a detach on a terminal while a process holds $node: the unbind waits ~3 s"
hold_open "$node"
holder=$HOLDER
(sleep 3; kill "$holder" 2>/dev/null) &
expect_rc 0 timeout 60 pt-vm-pty pt-bind --timeout 30 detach --force "$SLOT"
wait
assert_out_has "${cr}pt-bind: waiting for $NV_DRIVER to release $gpu (unbind) ... "
assert_out_has " s of 30 s"
# Rewritten in place as the time grows: more than one progress line.
n=$(printf '%s' "$OUT" | tr '\r' '\n' | grep -c "waiting for $NV_DRIVER to release")
[ "$n" -ge 4 ] || fail "progress lines of the blocked unbind" "at least 4" "$n"
# The wait succeeded: the line was cleared (blanked, then the cursor back).
assert_out_has "${cr}                                        "
assert_driver "$gpu" vfio-pci

say "an attach on a terminal while another process holds the pt lock for ~2 s"
flock /run/pt/lock sleep 2 &
locker=$!
wait_for "grep -q FLOCK /proc/locks" 5 || fail "the lock held by flock" "in /proc/locks" "$(cat /proc/locks)"
holder_pid=$(awk '$2 == "FLOCK" { print $5; exit }' /proc/locks)
expect_rc 0 timeout 60 pt-vm-pty pt-bind --lock-timeout 20 attach "$SLOT"
wait "$locker"
assert_out_has "${cr}pt-bind: waiting for the pt lock (held by pid $holder_pid) ... "
assert_out_has " s of 20 s"
assert_driver "$gpu" "$NV_DRIVER"

say "the same waits with stderr on a pipe: no progress text"
hold_open "$node"
holder=$HOLDER
(sleep 2; kill "$holder" 2>/dev/null) &
expect_rc 0 timeout 60 pt-bind --timeout 30 detach --force "$SLOT"
wait
assert_out_lacks "waiting for"
flock /run/pt/lock sleep 1 &
locker=$!
wait_for "grep -q FLOCK /proc/locks" 5 || fail "the lock held by flock" "in /proc/locks" "$(cat /proc/locks)"
expect_rc 0 timeout 60 pt-bind --lock-timeout 20 attach "$SLOT"
wait "$locker"
assert_out_lacks "waiting for"
assert_driver "$gpu" "$NV_DRIVER"
assert_journal_clean
pass

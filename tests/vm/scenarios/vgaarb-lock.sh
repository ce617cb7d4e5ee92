# vgaarb-lock.sh: pt-vgaarb lock holds 01:00.0's VGA lock while its command
# runs (a second reader sees locks=io+mem(1:1)) and releases it afterwards:
# when the command ends, fails, is killed, when pt-vgaarb gets SIGTERM, and
# when pt-vgaarb itself is SIGKILLed (the kernel drops the lock on close).
. /pt-vm/lib.sh

boot=$(boot_vga_device)
boot_cmd=$(cmd_bits "$boot")
assert_eq "locks of $GPU at the start" "none(0:0)" "$(arb_field "$GPU" locks)"
assert_eq "owns of $boot at the start" io+mem "$(arb_field "$boot" owns)"

# child_of PID: the one child process of PID.
child_of() { cat "/proc/$1/task/$1/children" 2>/dev/null | tr -d ' '; }
locked() { [ "$(arb_field "$GPU" locks)" = "io+mem(1:1)" ]; }
unlocked() { [ "$(arb_field "$GPU" locks)" = "none(0:0)" ]; }

say "held while the command runs"
pt-vgaarb lock "$GPU" -- sleep 3 &
pid=$!
wait_for locked 5 || fail "lock seen by a second reader" "locks=io+mem(1:1)" "$(arb_line "$GPU")"
echo "   second reader: $(arb_line "$GPU")"
echo "   CAPTURE $(arb_line "$GPU")"
echo "   CAPTURE $(arb_line "$boot")"
expect_rc 0 pt-vgaarb list
assert_out_has "io+mem(1:1)"
assert_eq "owns of $boot while $GPU holds the lock" none "$(arb_field "$boot" owns)"
ls -l "/proc/$(child_of $pid)/fd" 2>/dev/null | grep -q vga_arbiter && fail "descriptors of the command" "no /dev/vga_arbiter (O_CLOEXEC)" "inherited"
wait "$pid" && rc=0 || rc=$?
assert_eq "exit status of lock -- sleep 3" 0 "$rc"
unlocked || fail "lock after the command ended" "none(0:0)" "$(arb_line "$GPU")"
assert_eq "owns of $boot after the lock (handed back)" io+mem "$(arb_field "$boot" owns)"
assert_eq "command register IO/MEM of $boot after the lock" "$boot_cmd" "$(cmd_bits "$boot")"

say "the command's exit status, like flock(1)"
expect_rc 7 pt-vgaarb lock "$GPU" -- sh -c 'exit 7'
unlocked || fail "lock after a failing command" "none(0:0)" "$(arb_line "$GPU")"
expect_rc 127 pt-vgaarb lock "$GPU" -- /no/such/command
unlocked || fail "lock after a command that does not exist" "none(0:0)" "$(arb_line "$GPU")"

say "the command is killed: 128+9, unlocked"
pt-vgaarb lock "$GPU" io -- sleep 30 &
pid=$!
wait_for locked 5 || fail "lock io" "locks=io+mem(1:1) (the kernel locks io as io+mem)" "$(arb_line "$GPU")"
kill -9 "$(child_of $pid)"
wait "$pid" && rc=0 || rc=$?
assert_eq "exit status when the command is killed" 137 "$rc"
unlocked || fail "lock after the command was killed" "none(0:0)" "$(arb_line "$GPU")"

say "SIGTERM to pt-vgaarb reaches the command: 128+15, unlocked"
pt-vgaarb lock "$GPU" -- sleep 30 &
pid=$!
wait_for locked 5 || fail "lock" "locks=io+mem(1:1)" "$(arb_line "$GPU")"
child=$(child_of $pid)
kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
assert_eq "exit status after SIGTERM" 143 "$rc"
[ ! -e "/proc/$child" ] || fail "the command after SIGTERM to pt-vgaarb" "gone" "still running"
unlocked || fail "lock after SIGTERM" "none(0:0)" "$(arb_line "$GPU")"

say "pt-vgaarb SIGKILLed: the kernel drops the lock with the file"
pt-vgaarb lock "$GPU" -- sleep 30 &
pid=$!
wait_for locked 5 || fail "lock" "locks=io+mem(1:1)" "$(arb_line "$GPU")"
child=$(child_of $pid)
kill -9 "$pid"
wait "$pid" 2>/dev/null
wait_for unlocked 5 || fail "lock after SIGKILL of pt-vgaarb" "none(0:0)" "$(arb_line "$GPU")"
[ -e "/proc/$child" ] && echo "   the command ($child) runs on without the lock"
kill "$child" 2>/dev/null
echo "   $boot after the SIGKILL: $(arb_line "$boot") command $(cmd_bits "$boot") (nobody handed its resources back)"
pass

# console-vt.sh (default topology): pt-console vt N switches with
# VT_ACTIVATE + VT_WAITACTIVE and /sys/class/tty/tty0/active follows. When
# the active VT is held in VT_PROCESS mode by a process that never lets go
# (pt-vt-hold), the switch cannot finish: vt gives up after --timeout with
# exit 5 and the active VT is unchanged; once the holder is gone the switch
# works again.
. /pt-vm/lib.sh

active() { cat /sys/class/tty/tty0/active; }
start=$(active)
echo "   active VT at boot: $start"

say "vt 2 switches"
expect_rc 0 pt-console vt 2
assert_eq "active VT" tty2 "$(active)"
expect_json 0 pt-console --json vt 3
assert_json "vt result" '.result == "done" and .vt == 3 and .active == "tty3"'
assert_eq "active VT" tty3 "$(active)"
expect_rc 0 pt-console --dry-run vt 1
assert_eq "active VT after --dry-run" tty3 "$(active)"

say "a VT held in VT_PROCESS mode never lets go: exit 5 after --timeout"
command -v pt-vt-hold >/dev/null || fail "pt-vt-hold" "on PATH (built with the tests)" "missing"
pt-vt-hold /dev/tty3 >/tmp/hold.out 2>&1 &
holder=$!
wait_for "grep -q ready /tmp/hold.out" 5 || fail "pt-vt-hold" "ready" "$(cat /tmp/hold.out)"
t0=$(now_ns)
expect_rc 5 pt-console --timeout 1 vt 2
ms=$(elapsed_ms "$t0")
ms=${ms%.*}
echo "   gave up after $ms ms"
[ "$ms" -ge 1000 ] && [ "$ms" -lt 5000 ] || fail "time to give up" "1-5 s (--timeout 1)" "$ms ms"
assert_out_has "did not finish within --timeout"
assert_eq "active VT while held" tty3 "$(active)"
kill "$holder"
wait "$holder" 2>/dev/null

say "with the holder gone the switch works again"
expect_rc 0 pt-console --timeout 5 vt "${start#tty}"
assert_eq "active VT" "$start" "$(active)"
pass

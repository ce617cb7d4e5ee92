# drm-wait-timeout.sh: wait on a GPU that stays on vfio-pci times out with
# exit 5 and says why, within the timeout +-10%, without a busy loop (user +
# sys CPU under 5% of the wait, and -v shows a single look: nothing woke it).
. /pt-vm/lib.sh

expect_rc 0 pt-bind detach "$GPU"
assert_detached
# Long enough that the program's start-up CPU under TCG (0.1-0.4 s, more on a
# loaded host) is not what the 5% measures.
timeout_s=20
mark=$(now_ns)
# busybox time prints "real ... user ... sys ..." on stderr after the output.
LAST_CMD="time pt-drm -v wait --timeout $timeout_s $GPU"
OUT=$( { time pt-drm -v wait --timeout "$timeout_s" "$GPU"; } 2>&1) && RC=0 || RC=$?
ms=$(elapsed_ms "$mark")
printf '%s\n' "$OUT" | sed 's/^/  | /'
assert_eq "exit status of pt-drm wait" 5 "$RC"
assert_out_has "vfio-pci"
assert_out_has "no DRM card node appeared"
echo "   waited $ms ms for a ${timeout_s} s timeout"
awk -v m="$ms" -v t="$timeout_s" 'BEGIN { exit !(m >= t * 900 && m <= t * 1100) }' ||
  fail "duration of the wait" "$((timeout_s * 900))..$((timeout_s * 1100)) ms" "$ms ms"
# "user\t0m 0.13s": minutes, then seconds.
cpu_ms() { awk '/^(user|sys)/ { m = $2; s = $3; sub(/m$/, "", m); sub(/s$/, "", s); t += m * 60 + s } END { printf "%.0f", t * 1000 }'; }
cpu=$(printf '%s\n' "$OUT" | cpu_ms)
[ -n "$cpu" ] || fail "CPU time of pt-drm wait" "user and sys lines from time" "$OUT"
echo "   CPU (user+sys): $cpu ms = $(awk -v c="$cpu" -v m="$ms" 'BEGIN{printf "%.2f", 100 * c / m}')% of the wait"
awk -v c="$cpu" -v m="$ms" 'BEGIN { exit !(c < 0.05 * m) }' || fail "CPU time of the wait" "under 5% of $ms ms" "$cpu ms"

# What starting the program costs under TCG, for comparison: the wait itself
# adds almost nothing.
base=$( { time pt-drm --version >/dev/null; } 2>&1 | cpu_ms)
echo "   for comparison, pt-drm --version costs $base ms of CPU"

# -v prints each look: nothing happened during the wait, so nothing woke it.
looks=$(printf '%s\n' "$OUT" | grep -c ': look ')
assert_eq "looks at the device during a quiet wait (-v)" 1 "$looks"

say "the device is still parked"
assert_detached
expect_rc 0 pt-bind attach "$GPU"
pass

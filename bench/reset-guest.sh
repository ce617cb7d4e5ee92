# pt-vm: topology=quad
# Guest side of bench/reset.sh: pt-reset's own overhead per device (wall
# time minus the time the kernel spends in the reset write, from -v), and
# four independent GPUs reset by one call against one. Prints BENCH lines.
. /pt-vm/lib.sh

need_solo 4
runs=${PT_BENCH_RUNS:-5}
# shellcheck disable=SC2086 # a list of addresses
pt-bind detach $SOLOS >/dev/null || exit 1
one_dev=${SOLOS%% *}

for i in $(seq "$runs"); do
  t0=$(now_ns)
  pt-reset -v "$one_dev" >/dev/null 2>/tmp/v || { cat /tmp/v; exit 1; }
  wall=$(elapsed_ms "$t0")
  # The reset write's own time, as -v reports it: "... /reset "1" 113.582 ms".
  kern=$(awk '/\/reset "1"/ { print $(NF-1) }' /tmp/v)
  writes=$(awk '/: write / { s += $(NF-1) } END { print s + 0 }' /tmp/v)
  t0=$(now_ns)
  pt-reset --version >/dev/null
  start=$(elapsed_ms "$t0")
  echo "BENCH one $i wall_ms=$wall reset_write_ms=$kern all_writes_ms=$writes startup_ms=$start"
done
for i in $(seq "$runs"); do
  t0=$(now_ns)
  # shellcheck disable=SC2086
  pt-reset $SOLOS >/dev/null || exit 1
  echo "BENCH four $i wall_ms=$(elapsed_ms "$t0")"
done
# shellcheck disable=SC2086
pt-bind attach $SOLOS >/dev/null
echo "BENCH kernel $(uname -r)"

# Guest side of bench/drm-wait.sh: how long after the virtio GPU's card node
# appears does `pt-drm wait` return? Each run detaches the GPU, starts the
# wait under pt-bench-drm-wait (inotify on /dev/dri, monotonic clock), and
# attaches the GPU again. Prints BENCH lines.
. /pt-vm/lib.sh

runs=${PT_BENCH_RUNS:-5}
for i in $(seq "$runs"); do
  pt-bind detach "$GPU" >/dev/null || exit 1
  pt-bench-drm-wait pt-drm -v wait --timeout 60 "$GPU" >/tmp/bench.out 2>/tmp/bench.err &
  b=$!
  # Let the wait set up its watches; a wait started late only measures less.
  sleep 0.5
  pt-bind attach "$GPU" >/dev/null || exit 1
  wait "$b"
  sed "s/^BENCH wait /BENCH wait $i /" /tmp/bench.out
  sed "s/^/BENCH trace $i /" /tmp/bench.err
done
t0=$(now_ns)
pt-drm --version >/dev/null
echo "BENCH startup_ms=$(elapsed_ms "$t0")"
echo "BENCH kernel $(uname -r)"

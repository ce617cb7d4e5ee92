# Guest side of bench/drm-wait.sh: how long after the virtio GPU's card node
# appears does `pt-drm wait` return, and what does the least possible waiter
# (pt-bench-drm-floor, plain C) take in the same place? Prints BENCH lines.
#   startup  process start-up + exit: the C floor's one read vs pt-drm --version
#   read     open + drmModeGetResources + close on the live card, alone (our
#            close is the last, so the kernel runs lastclose) and while a
#            shell holds the card open (no lastclose)
#   floor/pt each run detaches the GPU, starts the waiter under
#            pt-bench-drm-wait (inotify on /dev/dri, monotonic clock), attaches
#            the GPU; floor and pt alternate
#   ftrace   with PT_BENCH_FTRACE=1, one more run of each with the kernel's own
#            durations (function_graph) of the DRM open, GetResources,
#            release, lastclose, the driver's fbdev setup and process exit
. /pt-vm/lib.sh

runs=${PT_BENCH_RUNS:-5}
card=$(basename "$(drm_card_of "$GPU")")
[ -n "$card" ] || fail "no card for $GPU"

# Process start-up and exit: the C floor vs pt-drm (median of the runs).
for i in $(seq "$runs"); do
  t0=$(now_ns); pt-bench-drm-floor read "$card" 1 2>/dev/null; t1=$(now_ns)
  pt-drm --version >/dev/null; t2=$(now_ns)
  echo "BENCH startup $i floor_read_ms=$(elapsed_ms "$t0" "$t1") pt_version_ms=$(elapsed_ms "$t1" "$t2")"
done
LD_DEBUG=statistics pt-drm --version 2>&1 >/dev/null | sed 's/^/BENCH ld pt-drm /'
LD_DEBUG=statistics pt-bench-drm-floor read "$card" 1 2>&1 >/dev/null | sed 's/^/BENCH ld floor /'
pt-bench-drm-floor read "$card" "$runs" 2>&1 | sed 's/^FLOOR read /BENCH read alone /'
exec 3<"/dev/dri/$card"
pt-bench-drm-floor read "$card" "$runs" 2>&1 | sed 's/^FLOOR read /BENCH read held /'
exec 3<&-

cycle() { # cycle I TAG CMD...: detach, CMD under the stamp, attach
  i=$1 tag=$2
  shift 2
  pt-bind detach "$GPU" >/dev/null || exit 1
  pt-bench-drm-wait "$@" >/tmp/bench.out 2>/tmp/bench.err &
  b=$!
  if [ -n "${TRACE_PIDS:-}" ]; then
    echo "$b" >"$TRACE_PIDS/set_ftrace_pid"
    echo "$b" >"$TRACE_PIDS/set_event_pid"
  fi
  sleep 0.5
  pt-bind attach "$GPU" >/dev/null || exit 1
  wait "$b"
  sed "s/^BENCH wait /BENCH $tag $i /" /tmp/bench.out
  sed "s/^/BENCH trace-$tag $i /" /tmp/bench.err
}
for i in $(seq "$runs"); do
  cycle "$i" floor pt-bench-drm-floor wait "$card"
  cycle "$i" pt pt-drm -v wait --timeout 60 "$GPU"
done

T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs tracefs $T 2>/dev/null
TRACE_PIDS=
if [ "${PT_BENCH_FTRACE:-0}" != 1 ]; then
  :
elif [ -w $T/set_ftrace_filter ]; then
  echo 0 >$T/tracing_on
  echo nop >$T/current_tracer
  for f in drm_open drm_release drm_lastclose drm_client_dev_restore drm_mode_getresources \
    drm_fbdev_generic_setup do_exit exit_mmap; do
    echo "$f" >>$T/set_ftrace_filter 2>/dev/null || echo "BENCH ftrace no $f"
  done
  echo function_graph >$T/current_tracer
  echo funcgraph-proc >$T/trace_options 2>/dev/null
  echo funcgraph-abstime >$T/trace_options 2>/dev/null
  echo function-fork >$T/trace_options 2>/dev/null
  echo event-fork >$T/trace_options 2>/dev/null
  TRACE_PIDS=$T
  for tag in floor pt; do
    echo >$T/trace
    echo 1 >$T/events/raw_syscalls/enable
    echo 1 >$T/tracing_on
    if [ $tag = floor ]; then
      cycle 0 ftrace-floor pt-bench-drm-floor wait "$card"
    else
      cycle 0 ftrace-pt pt-drm -v wait --timeout 60 "$GPU"
    fi
    echo 0 >$T/tracing_on
    echo 0 >$T/events/raw_syscalls/enable
    # The last second: the attach and the wait's end.
    grep -vE '^ *#' $T/trace | sed "s/^/BENCH ftrace-$tag /" | tail -n 400
  done
  echo >$T/set_ftrace_pid
  echo >$T/set_event_pid
  echo nop >$T/current_tracer
else
  echo "BENCH ftrace unavailable"
fi
echo "BENCH kernel $(uname -r)"

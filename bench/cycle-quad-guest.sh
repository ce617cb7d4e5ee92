# pt-vm: topology=quad
# Guest side of bench/cycle.sh's parallel figure: four GPUs (quad topology,
# each alone behind its root port) cycled at once against one GPU's cycle.
# The cycle per GPU is the single-GPU one of cycle-guest.sh: pt-console
# release, pt-bind detach, the VM stand-in, then the recovery recipe, less
# pt-vgaarb restore: quad's virtio-gpu-pci GPUs are of class 0x0380, which
# the VGA arbiter does not manage (pt-vgaarb refuses them). The tools
# serialize on the pt lock where they change state, as they would on a host.
# Two ways of cycling four together:
#   four     four copies of the one-GPU pipeline, in the background at once
#   batched  one pipeline for all four: pt-bind and pt-reset take every DEV in
#            one call (pt-reset resets them in parallel), pt-console and
#            pt-drm take one DEV per call and run as four background jobs
#   recover  the recovery alone, `pt-bind recover` in one process: of one
#            GPU, and of all four in one call
# Prints BENCH lines.
. /pt-vm/lib.sh

runs=${PT_BENCH_RUNS:-5}
need_solo 4
one_cycle() { # one_cycle DEV LOG
  {
    pt-console release "$1" && pt-bind detach "$1" && pt-vm-standin "$1" &&
      pt-reset --method bus "$1" && pt-bind attach "$1" && pt-drm wait "$1" &&
      pt-console restore "$1" && pt-drm check "$1"
  } >"$2" 2>&1
}
bg_all() { # bg_all CMD...: CMD DEV for every GPU at once; fails if one fails
  _pids=
  for _d in $SOLOS; do
    "$@" "$_d" >>/tmp/batch.log 2>&1 &
    _pids="$_pids $!"
  done
  _rc=0
  for _p in $_pids; do wait "$_p" || _rc=1; done
  return $_rc
}
batched_cycle() {
  : >/tmp/batch.log
  bg_all pt-console release && pt-bind detach $SOLOS >>/tmp/batch.log 2>&1 &&
    bg_all pt-vm-standin && pt-reset --method bus $SOLOS >>/tmp/batch.log 2>&1 &&
    pt-bind attach $SOLOS >>/tmp/batch.log 2>&1 && bg_all pt-drm wait &&
    bg_all pt-console restore && bg_all pt-drm check
}
prepare() { # prepare DEV...: what a VM start and stop leaves, untimed
  for _d in "$@"; do pt-console release "$_d" >/tmp/prep.log 2>&1 || fail "release $_d: $(cat /tmp/prep.log)"; done
  pt-bind detach "$@" >/tmp/prep.log 2>&1 || fail "detach $*: $(cat /tmp/prep.log)"
  for _d in "$@"; do pt-vm-standin "$_d" >/tmp/prep.log 2>&1 || fail "stand-in $_d: $(cat /tmp/prep.log)"; done
}
check_all() {
  for d in $SOLOS; do
    assert_driver "$d" virtio-pci
    pt-drm check "$d" >/tmp/check.out 2>&1 || fail "$1: $d unhealthy: $(cat /tmp/check.out)"
  done
}
# Warm-up, and proof that the cycle works on every GPU.
for d in $SOLOS; do
  one_cycle "$d" /tmp/warm.log || fail "warm-up cycle of $d: $(cat /tmp/warm.log)"
done
check_all warm-up
for i in $(seq "$runs"); do
  t0=$(now_ns)
  one_cycle "$SOLO" /tmp/one.log || fail "cycle of $SOLO: $(cat /tmp/one.log)"
  t1=$(now_ns)
  check_all "one $i"
  echo "BENCH quad one $i total_ms=$(elapsed_ms "$t0" "$t1")"
  t0=$(now_ns)
  pids= n=0
  for d in $SOLOS; do
    n=$((n + 1))
    one_cycle "$d" "/tmp/par$n.log" &
    pids="$pids $!"
  done
  rc=0
  for p in $pids; do wait "$p" || rc=1; done
  t1=$(now_ns)
  [ $rc = 0 ] || fail "parallel cycle $i: $(cat /tmp/par*.log)"
  check_all "four $i"
  echo "BENCH quad four $i total_ms=$(elapsed_ms "$t0" "$t1")"
  t0=$(now_ns)
  batched_cycle || fail "batched cycle $i: $(cat /tmp/batch.log)"
  t1=$(now_ns)
  check_all "batched $i"
  echo "BENCH quad batched $i total_ms=$(elapsed_ms "$t0" "$t1")"
  # The recovery alone in one process: one GPU, then all four in one call.
  prepare "$SOLO"
  t0=$(now_ns)
  pt-bind recover "$SOLO" >/tmp/rec.log 2>&1 || fail "pt-bind recover $SOLO: $(cat /tmp/rec.log)"
  t1=$(now_ns)
  check_all "recover-one $i"
  echo "BENCH quad recover-one $i total_ms=$(elapsed_ms "$t0" "$t1")"
  prepare $SOLOS
  t0=$(now_ns)
  # shellcheck disable=SC2086 # one word per GPU
  pt-bind recover $SOLOS >/tmp/rec.log 2>&1 || fail "pt-bind recover $SOLOS: $(cat /tmp/rec.log)"
  t1=$(now_ns)
  check_all "recover-four $i"
  echo "BENCH quad recover-four $i total_ms=$(elapsed_ms "$t0" "$t1")"
done
echo "BENCH cpus $(grep -c ^processor /proc/cpuinfo)"
echo "BENCH kernel $(uname -r)"
pass

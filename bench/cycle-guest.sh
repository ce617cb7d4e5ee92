# pt-vm: topology=console
# Guest side of bench/cycle.sh: the whole cycle's wall time, pt against two
# baselines, in one VM run (console topology: fbcon on the virtio GPU).
#   pt    pt-console release; pt-bind detach; the VM stand-in; then the
#         recovery recipe: pt-reset --method bus && pt-bind attach && pt-drm wait &&
#         pt-vgaarb restore && pt-console restore && pt-drm check
#   pt1   the same, with the recipe run by `pt-bind recover` in one process
#   bare  (a): only the kernel writes pt made, in pt's order, as shell
#         builtins, no checks. They are taken from a first pt cycle run with
#         -v (every write is printed), so the two cannot drift apart.
#   hook  (b): the popular single-GPU passthrough hook scripts' way: unbind
#         vtcon0 and vtcon1, unbind efi-framebuffer.0, `sleep 2` "to avoid a
#         race condition", then per function driver_override, unbind,
#         drivers_probe (what `virsh nodedev-detach` does); after the VM, the
#         same back (`virsh nodedev-reattach`), bind vtcon0 and efifb again.
# The four alternate, PT_BENCH_RUNS rounds; each
# also reports its recovery alone (the recipe, or (a)'s writes from the reset on). Every cycle must end healthy
# (pt-drm check exit 0, both functions on their drivers), or the run fails.
# Prints BENCH lines.
. /pt-vm/lib.sh

runs=${PT_BENCH_RUNS:-5}
ms() { elapsed_ms "$1" "$2"; }
healthy() {
  assert_driver "$GPU" virtio-pci
  assert_driver "$AUD" snd_hda_intel
  pt-drm check "$GPU" >/tmp/check.out 2>&1 || fail "cycle $1 ended unhealthy: $(cat /tmp/check.out)"
  assert_vtcon_bind "frame buffer device" 1
}

# ---- warm-up pt cycle with -v: the writes, per step, become (a)
steps="release detach standin reset attach wait vgaarb console check"
step_cmd() {
  case $1 in
    release) echo "pt-console $2 release $GPU" ;;
    detach) echo "pt-bind $2 detach $GPU" ;;
    standin) echo "pt-vm-standin $GPU" ;;
    reset) echo "pt-reset $2 --method bus $GPU" ;;
    attach) echo "pt-bind $2 attach $GPU" ;;
    wait) echo "pt-drm $2 wait $GPU" ;;
    vgaarb) echo "pt-vgaarb $2 restore $GPU" ;;
    console) echo "pt-console $2 restore $GPU" ;;
    check) echo "pt-drm $2 check $GPU" ;;
  esac
}
: >/tmp/bare.sh
for s in $steps; do
  $(step_cmd $s -v) >/tmp/step.out 2>/tmp/step.err || fail "warm-up step $s: $(cat /tmp/step.err)"
  if [ $s = standin ]; then
    echo "pt-vm-standin $GPU >/dev/null" >>/tmp/bare.sh
    continue
  fi
  [ $s = reset ] && echo "stamp; BARE_REC=\$STAMP # the recovery" >>/tmp/bare.sh
  # pt-X: write PATH "VALUE" 1.234 ms   (a failed write ends in "failed: ...")
  sed -n 's/^pt-[a-z]*: write \([^ ]*\) "\(.*\)" [0-9.]* ms$/\1 \2/p' /tmp/step.err |
    while read -r path value; do
      printf "printf '%%b' '%s' >%s\n" "$value" "$path"
    done >>/tmp/bare.sh
  grep -c ' failed: ' /tmp/step.err | sed "s/^/BENCH failed-writes $s /"
done
healthy warm-up
sed 's/^/BENCH bare-script /' /tmp/bare.sh

hook_cycle() {
  echo 0 >/sys/class/vtconsole/vtcon0/bind 2>/dev/null
  echo 0 >/sys/class/vtconsole/vtcon1/bind 2>/dev/null
  echo efi-framebuffer.0 >/sys/bus/platform/drivers/efi-framebuffer/unbind 2>/dev/null
  sleep 2
  for d in "$GPU" "$AUD"; do
    echo vfio-pci >/sys/bus/pci/devices/$d/driver_override
    [ -e /sys/bus/pci/devices/$d/driver ] && echo "$d" >/sys/bus/pci/devices/$d/driver/unbind
    echo "$d" >/sys/bus/pci/drivers_probe
  done
  pt-vm-standin "$GPU" >/dev/null
  for d in "$GPU" "$AUD"; do
    [ -e /sys/bus/pci/devices/$d/driver ] && echo "$d" >/sys/bus/pci/devices/$d/driver/unbind
    echo >/sys/bus/pci/devices/$d/driver_override
    echo "$d" >/sys/bus/pci/drivers_probe
  done
  echo 1 >/sys/class/vtconsole/vtcon0/bind 2>/dev/null
  echo 1 >/sys/class/vtconsole/vtcon1/bind 2>/dev/null
  echo efi-framebuffer.0 >/sys/bus/platform/drivers/efi-framebuffer/bind 2>/dev/null
  return 0
}

run_step() { # run_step STEP: the pt command of STEP, output to /tmp/step.out
  case $1 in
    release) pt-console release "$GPU" ;;
    detach) pt-bind detach "$GPU" ;;
    standin) pt-vm-standin "$GPU" ;;
    reset) pt-reset --method bus "$GPU" ;;
    attach) pt-bind attach "$GPU" ;;
    wait) pt-drm wait "$GPU" ;;
    vgaarb) pt-vgaarb restore "$GPU" ;;
    console) pt-console restore "$GPU" ;;
    check) pt-drm check "$GPU" ;;
    recover) pt-bind recover "$GPU" ;;
  esac >/tmp/step.out 2>&1
}
# Per-step times from /proc/uptime (10 ms steps) through the read built-in:
# no process is started between the steps, so the cycle's total is not
# charged with the timing (now_ns starts sed and head, about 30 ms each here).
stamp() {
  read -r _up _idle </proc/uptime
  STAMP=$((${_up%.*}${_up#*.} * 10))
}
pt_cycle() { # pt_cycle STEP...: sets STEPS="step=ms ..." and REC (ms from the reset on)
  STEPS=
  stamp
  for s in "$@"; do
    _a=$STAMP
    [ $s = reset ] || [ $s = recover ] && _rec=$STAMP
    run_step $s || fail "pt step $s: $(cat /tmp/step.out)"
    stamp
    STEPS="$STEPS $s=$((STAMP - _a))"
  done
  REC=$((STAMP - _rec))
}

# Process start-up alone under TCG: the smallest static program, a small C++
# program (the stand-in's usage), a pt tool, and the same tool with libkmod
# preloaded, which is what every pt tool loaded at start when it linked
# libkmod (libkmod brings libcrypto, libzstd, liblzma, libz).
kmod=$(ls /lib/x86_64-linux-gnu/libkmod.so.2 2>/dev/null)
for i in $(seq "$runs"); do
  a=$(now_ns); /bin/true; b=$(now_ns); pt-drm --version >/dev/null; c=$(now_ns)
  pt-vm-standin --help >/dev/null 2>&1; d=$(now_ns)
  [ -n "$kmod" ] && LD_PRELOAD=$kmod pt-drm --version >/dev/null; e=$(now_ns)
  echo "BENCH startup $i busybox_true_ms=$(ms "$a" "$b") pt_version_ms=$(ms "$b" "$c") standin_help_ms=$(ms "$c" "$d") pt_version_kmod_preloaded_ms=$(ms "$d" "$e")"
done

for i in $(seq "$runs"); do
  t0=$(now_ns)
  pt_cycle $steps
  t1=$(now_ns)
  healthy "pt $i"
  echo "BENCH cycle pt $i total_ms=$(ms "$t0" "$t1") recovery_ms=$REC$STEPS"

  t0=$(now_ns)
  pt_cycle release detach standin recover
  t1=$(now_ns)
  healthy "pt1 $i"
  # The recovery's own per-step times, as pt-bind recover prints them.
  RSTEPS=$(sed -n 's/^recover [^ ]*: \([a-z-]*\) exited 0 after \([0-9]*\) ms.*/ r_\1=\2/p' /tmp/step.out | tr -d '\n')
  echo "BENCH cycle pt1 $i total_ms=$(ms "$t0" "$t1") recovery_ms=$REC$STEPS$RSTEPS"

  t0=$(now_ns)
  . /tmp/bare.sh
  stamp
  t1=$(now_ns)
  healthy "bare $i"
  echo "BENCH cycle bare $i total_ms=$(ms "$t0" "$t1") recovery_ms=$((STAMP - BARE_REC))"

  t0=$(now_ns)
  hook_cycle
  t1=$(now_ns)
  # The hook does not wait for the card; the check below is not timed.
  wait_for "[ -n \"\$(drm_card_of $GPU)\" ]" 10
  healthy "hook $i"
  echo "BENCH cycle hook $i total_ms=$(ms "$t0" "$t1")"
done
echo "BENCH loadavg-guest $(cat /proc/loadavg)"
echo "BENCH kernel $(uname -r)"
pass

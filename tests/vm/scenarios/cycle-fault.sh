# pt-vm: topology=console
# cycle-fault.sh: a failure injected at each step of the recovery recipe
# (pt(7), RECOVERY) stops the recovery with that step's documented exit
# status, and a second run then ends healthy (as cycle-full). The recovery
# is `pt-bind recover` in one process (the same steps from pt.conf, which
# skips the reset once the host driver has the GPU), for the faults that can
# be set up before it starts; a fault that must land between two steps of
# one run (the journal failing at the console step, the connector forced
# off before the check) is injected into the pipeline of tools that
# `pt-bind recover --recipe` prints. The second run is always `pt-bind
# recover`.
#   reset:     the VM still holds the group (1); the kernel rejects the
#              reset write (EIO, 1), or, on kernels without
#              reset_subordinate, pt-reset's own config write does (1)
#   attach:    drivers_probe of the GPU fails (EIO: rolled back, 3);
#              pt-bind killed (SIGKILL) after the attach's 3rd write (137)
#   drm-wait:  no DRM driver for the GPU (virtio_gpu unloaded): timeout (5)
#   lock:      another pt command holds the lock: nothing runs (75)
#   console:   the journal cannot be written (EIO, 1; pipeline)
#   drm-check: the connector forced off: degraded (6; pipeline)
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
write_recipe_conf

STEPS="reset attach drm-wait vgaarb console drm-check"
step_cmd() {
  case $1 in
    reset) echo "pt-reset --method bus $gpu" ;;
    attach) echo "pt-bind attach $gpu" ;;
    drm-wait) echo "pt-drm wait $gpu" ;;
    vgaarb) echo "pt-vgaarb restore $gpu" ;;
    console) echo "pt-console restore $gpu" ;;
    drm-check) echo "pt-drm check $gpu" ;;
  esac
}

# recipe_with STEP CMD: the recipe's pipeline with STEP's command replaced by
# CMD (the injected fault); sets RC and prints the output.
recipe_with() {
  _line=
  for _s in $STEPS; do
    _c=$(step_cmd "$_s")
    [ "$_s" = "$1" ] && _c=$2
    _line="${_line:+$_line && }$_c"
  done
  echo "\$ $_line"
  if eval "$_line" >/tmp/recipe.out 2>&1; then RC=0; else RC=$?; fi
  sed 's/^/  | /' /tmp/recipe.out
  echo "  -> exit $RC"
}

# kill_after_attach K CMD...: run CMD (a pt-bind -v recover), SIGKILL it once
# its attach step reported K writes; returns its status (137 when killed).
kill_after_attach() {
  _k=$1
  shift
  rm -f /tmp/fifo
  mkfifo /tmp/fifo
  "$@" >/tmp/fifo 2>&1 &
  _pid=$!
  _n=0
  _on=
  while IFS= read -r _l; do
    echo "$_l"
    case $_l in *": attach: "*) _on=1 ;; esac
    case $_on$_l in 1*": write "*) _n=$((_n + 1)) ;; esac
    if [ $_n -ge "$_k" ]; then
      kill -9 $_pid 2>/dev/null
      break
    fi
  done </tmp/fifo
  wait $_pid
}

# dirty: a fresh cycle up to the recovery: console released, both functions
# detached and left dirty by the VM stand-in.
dirty() {
  pt-console release "$gpu" >/dev/null 2>&1 || fail "pt-console release" 0 "$?"
  pt-bind detach "$SLOT" >/dev/null 2>&1 || fail "pt-bind detach" 0 "$?"
  vm_dirty "$gpu" >/dev/null
  vm_dirty "$AUD" >/dev/null
}

# second_run: the recovery again, as a user would after fixing the cause.
second_run() {
  expect_rc 0 pt-bind recover "$gpu"
  assert_out_has "recover $gpu: done"
  assert_cycle_healthy "$gpu" "$boot" >/dev/null
  echo "   second run: healthy, $(cycle_state | tr '\n' ' ')"
}

# fault STEP WANT DESCRIPTION CMDLINE: one case, CMDLINE a `pt-bind recover`
# with the fault in place.
fault() {
  say "fault at $1: $3"
  dirty
  echo "\$ $4"
  if eval "$4" >/tmp/recipe.out 2>&1; then RC=0; else RC=$?; fi
  sed 's/^/  | /' /tmp/recipe.out
  echo "  -> exit $RC"
  assert_eq "exit status of pt-bind recover with '$3' at $1" "$2" "$RC"
  [ "$RC" = 0 ] || [ "$RC" = 137 ] || [ "$RC" = 75 ] ||
    grep -q "recovery stopped at step '$1' (exit $2)" /tmp/recipe.out ||
    fail "the error of pt-bind recover" "recovery stopped at step '$1' (exit $2)" "$(tail -n 3 /tmp/recipe.out)"
}

# fault_pipeline STEP WANT DESCRIPTION CMD: the same in the pipeline.
fault_pipeline() {
  say "fault at $1 (pipeline): $3"
  dirty
  recipe_with "$1" "$4"
  assert_eq "exit status of the recipe with '$3' at $1" "$2" "$RC"
}

wait_for "pt-drm check $gpu >/dev/null 2>&1" 20 || fail "pt-drm check at boot" 0 "$(pt-drm check "$gpu" 2>&1)"
boot=$(cycle_state)
faults=0

# reset: the VM has not let go of the group yet.
say "fault at reset: the VM still holds /dev/vfio/$(group_of "$gpu")"
dirty
pt-vm-standin "$gpu" --hold 60 >/dev/null 2>&1 &
vm=$!
wait_for "[ \$(cmd_reg $gpu) = 0x0105 ]" 20 || fail "stand-in holding $gpu" "cmd=0x0105" "$(cmd_reg "$gpu")"
expect_rc 1 recipe "$gpu"
assert_out_has "pt-vm-standin"
assert_detached
kill $vm
wait $vm 2>/dev/null
second_run
faults=$((faults + 1))

bridge=$(parent_of "$gpu")
if [ -e "/sys/bus/pci/devices/$bridge/reset_subordinate" ]; then
  fault reset 1 "the kernel rejects the reset (EIO)" \
    "LD_PRELOAD=/lib/pt-fault.so PT_FAULT=reset_subordinate=1:EIO pt-bind recover $gpu"
else
  # pt-reset resets the bus itself (no reset_subordinate before late 2024):
  # its first config write to the bridge, Secondary Bus Reset, fails.
  fault reset 1 "the bridge's config write fails (EIO)" \
    "LD_PRELOAD=/lib/pt-fault.so PT_FAULT=$bridge/config=:EIO@1 pt-bind recover $gpu"
fi
assert_detached
second_run
faults=$((faults + 1))

fault attach 3 "drivers_probe of the GPU fails (EIO)" \
  "LD_PRELOAD=/lib/pt-fault.so PT_FAULT=/sys/bus/pci/drivers_probe=$gpu:EIO pt-bind recover $gpu"
assert_detached
second_run
faults=$((faults + 1))

fault attach 137 "pt-bind recover killed after the attach's 3rd write" "kill_after_attach 3 pt-bind -v recover $gpu"
assert_eq "journal job after the kill" attach "$(jq -r '.job.op' "$PT_JOURNAL")"
second_run
faults=$((faults + 1))

say "fault at drm-wait: no DRM driver for the GPU (virtio_gpu unloaded)"
dirty
out=$(rmmod virtio_gpu 2>&1) || fail "rmmod virtio_gpu" "unloaded" "$out"
echo "\$ pt-bind --timeout 3 recover $gpu"
if pt-bind --timeout 3 recover "$gpu" >/tmp/recipe.out 2>&1; then RC=0; else RC=$?; fi
sed 's/^/  | /' /tmp/recipe.out
assert_eq "exit status of pt-bind recover at drm-wait" 5 "$RC"
assert_out_has_file() { grep -qF "$1" /tmp/recipe.out || fail "pt-bind recover's output" "$1" "$(tail -n 3 /tmp/recipe.out)"; }
assert_out_has_file "recovery stopped at step 'drm-wait' (exit 5)"
assert_eq "driver of $gpu" "$GPU_DRIVER" "$(driver_of "$gpu")"
modprobe virtio_gpu
second_run
faults=$((faults + 1))

# One process takes the lock once, before its first step: held elsewhere,
# nothing runs.
fault lock 75 "another pt command holds the lock" \
  "flock /run/pt/lock -c 'pt-bind --lock-timeout 1 recover $gpu'"
assert_detached
assert_eq "journal VGA record of $gpu (kept)" io+mem "$(journal_vga "$gpu" decodes)"
second_run
faults=$((faults + 1))

fault_pipeline console 1 "the journal cannot be written (EIO)" \
  "LD_PRELOAD=/lib/pt-fault.so PT_FAULT=journal.json.tmp=:EIO $(step_cmd console)"
[ "$(console_journal "$gpu")" != null ] || fail "journal console records of $gpu after the failed restore" "kept" "null"
second_run
faults=$((faults + 1))

conn=$(for c in /sys/class/drm/"$(basename "$(drm_card_of "$gpu")")"-*; do [ -e "$c/status" ] && basename "$c"; done | head -n1)
fault_pipeline drm-check 6 "the connector forced off" \
  "echo off >/sys/class/drm/\$(basename \$(drm_card_of $gpu))-Virtual-1/status && $(step_cmd drm-check)"
echo detect >"/sys/class/drm/$(basename "$(drm_card_of "$gpu")")-Virtual-1/status"
second_run
faults=$((faults + 1))

echo "   $faults faults injected; each second run ended healthy (connector $conn)"
pass

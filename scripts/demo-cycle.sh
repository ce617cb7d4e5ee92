# pt-vm: topology=console
# The quick-start demo, run inside the QEMU guest by scripts/demo: the whole
# passthrough cycle on the emulated GPU (virtio-vga, the boot VGA device that
# carries the console) and its audio function (ich9-intel-hda): release the
# console, detach both functions to vfio-pci, let the VM stand-in use them
# and leave them dirty, then recover with the recipe of pt(7) (RECOVERY).
# Every step prints a progress line with the elapsed time and a before/after
# table per function; changed values are marked with '*'.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
t0=$(cut -d' ' -f1 /proc/uptime)
elapsed() { awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%6.2fs", b - a }'; }
NSTEPS=5
N=0
SUM_MS=0

# fields BDF: "DRIVER|POWER|COMMAND|DECODES/OWNS|VTCONSOLE|DRM" of a function.
fields() {
  _pw=$(pm_state "$1")
  [ "$_pw" != - ] || _pw="$(cat "/sys/bus/pci/devices/$1/power_state" 2>/dev/null || echo -)"
  _vt=-
  _drm=-
  if [ "$1" = "$gpu" ]; then
    _fc=$(fbcon_state "$1")
    case $_fc in
      "fbcon=0"*) _vt=unbound ;;
      *"(gpu)") _vt="tty1 on $(echo "$_fc" | sed 's/.*tty1=\(fb[0-9]*\).*/\1/')" ;;
      *) _vt="tty1 elsewhere" ;;
    esac
    _drm=$(drm_state "$1")
  fi
  echo "$(driver_of "$1")|$_pw|$(cmd_reg "$1")|$(arb_of "$1")|$_vt|$_drm"
}

header() {
  printf ' %-7s %-6s %-14s %-6s %-7s %-14s %-12s %s\n' \
    DEVICE "" DRIVER POWER COMMAND DECODES/OWNS VTCONSOLE "DRM CARD"
}
# row NAME WHEN FIELDS [BEFORE]: one table row; with BEFORE, changed cells get '*'.
row() {
  _old=${4:-$3}
  _out=
  _i=1
  while [ $_i -le 6 ]; do
    _n=$(echo "$3" | cut -d'|' -f$_i)
    _o=$(echo "$_old" | cut -d'|' -f$_i)
    [ "$_n" = "$_o" ] || _n="$_n*"
    _out="$_out|$_n"
    _i=$((_i + 1))
  done
  echo "$_out" | awk -F'|' -v n="$1" -v w="$2" \
    '{ printf " %-7s %-6s %-14s %-6s %-7s %-14s %-12s %s\n", n, w, $2, $3, $4, $5, $6, $7 }'
}
snap() { B_GPU=$(fields "$gpu"); B_AUD=$(fields "$aud"); }
table() {
  header
  row "${GPU#0000:}" before "$B_GPU"
  row "" after "$(fields "$gpu")" "$B_GPU"
  row "${AUD#0000:}" before "$B_AUD"
  row "" after "$(fields "$aud")" "$B_AUD"
}

# step TITLE CMD...: progress line, the command's output, the exit status and
# time, the before/after table. Stops the demo when the command fails.
step() {
  N=$((N + 1))
  _title=$1
  shift
  echo
  echo "[$(elapsed)] step $N/$NSTEPS: $_title"
  echo "           \$ $*"
  snap
  _s=$(now_ns)
  if "$@" >/tmp/step.out 2>&1; then _rc=0; else _rc=$?; fi
  _ms=$(elapsed_ms "$_s")
  SUM_MS=$(awk -v a="$SUM_MS" -v b="$_ms" 'BEGIN { print a + b }')
  fold -s -w 86 /tmp/step.out | sed 's/^/           | /'
  echo "           exit $_rc after $_ms ms"
  table
  [ $_rc = 0 ] || {
    echo
    echo "[$(elapsed)] step $N failed with exit $_rc (see pt(7), EXIT STATUS); the demo stops here"
    exit $_rc
  }
}

# The VM stand-in: holds the group (the VM runs) until vm_stop.
vm_start() {
  pt-vm-standin "$gpu" --hold 600 >/tmp/vm.out 2>&1 &
  VM=$!
  wait_for "[ \$(pm_state $gpu) = D3hot ] && [ \$((\$(cfg_read $gpu 4 2) & 6)) = 4 ]" 20 &&
    echo "the VM left $gpu: $(cat /tmp/vm.out)"
}
vm_stop() {
  kill "$VM" && wait "$VM" 2>/dev/null
  pt-vm-standin "$aud"
  echo "the VM exited without cleanup; vfio-pci's release of the device ran"
}

echo "[$(elapsed)] the host as it booted: $gpu, boot_vga=$(cat "/sys/bus/pci/devices/$gpu/boot_vga"), is the GPU,"
echo "           fbcon shows the console on its framebuffer; $aud is its HDMI audio stand-in"
echo "           (01:00.1 has no PM capability: its POWER is the kernel's power_state)"
snap
header
row "${GPU#0000:}" now "$B_GPU"
row "${AUD#0000:}" now "$B_AUD"

step "release the console" pt-console release "$gpu"
step "detach GPU+audio to vfio-pci" pt-bind detach "$SLOT"
step "the VM runs: it opened /dev/vfio/$(group_of "$gpu") and left the GPU dirty" vm_start
step "the VM stops (killed, no cleanup)" vm_stop
echo
echo "[$(elapsed)] recovery: the recipe of pt(7), as 'pt-bind recover --recipe $gpu' prints it,"
echo "           run by 'pt-bind recover $gpu' in one process; a failing step stops it with its"
echo "           exit status:"
pt-bind recover --recipe "$gpu" >/tmp/recipe || exit $?
sed 's/^/           /' /tmp/recipe
SUM_MS=0
step "recover: reset, attach, DRM wait, decodes, console, check" pt-bind recover "$gpu"
echo
echo "[$(elapsed)] the recovery took $SUM_MS ms (the tables not counted)"
echo "           journal: $(jq -c . "$PT_JOURNAL")"
echo "[$(elapsed)] verdict of the DRM check: $(sed -n 's/.*drm-check exited 0 after [0-9]* ms: //p' /tmp/step.out)"

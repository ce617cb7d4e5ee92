#!/bin/bash
# hooks.sh SRCDIR PT_BIND: the hypervisor hooks of contrib/ on a fake tree
# (PT_ROOT) with recording stand-ins for the pt tools (PT_BINDIR), except
# that `pt-bind recover --recipe` is the real PT_BIND's, unrecorded
# (printing the recipe is no step): which tools each
# call runs, in which order, with which devices, whether the pt lock is held
# and passed down (PT_LOCK_FD) while they run, and the refusals. What the
# tools then do to a real kernel is the VM scenarios' part (vm.hook-proxmox,
# vm.hook-libvirt).
set -u
src=${1:?usage: hooks.sh SRCDIR PT_BIND}
export PT_REAL_BIND=${2:?usage: hooks.sh SRCDIR PT_BIND}
PROXMOX=$src/contrib/proxmox/pt-hookscript
LIBVIRT=$src/contrib/libvirt/qemu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
fail() {
  echo "FAIL: $1"
  [[ $# -ge 3 ]] && printf '  expected: %s\n  got:      %s\n' "$2" "$3"
  echo "  output of the last call:"
  sed 's/^/    /' "$T/out"
  failures=$((failures + 1))
}
check_eq() { [[ $2 == "$3" ]] || fail "$1" "$2" "$3"; }
check_has() { grep -qF -- "$2" "$T/out" || fail "$1: output lacks '$2'"; }

# The fake tree: 01:00.0 VGA + 01:00.1 audio on vfio-pci, 03:00.0 a 3D controller.
dev() {
  mkdir -p "$T/sys/bus/pci/devices/$1" "$T/sys/bus/pci/drivers/$3"
  echo "$2" >"$T/sys/bus/pci/devices/$1/class"
  ln -sfn "../../drivers/$3" "$T/sys/bus/pci/devices/$1/driver"
}
dev 0000:01:00.0 0x030000 vfio-pci
dev 0000:01:00.1 0x040300 vfio-pci
dev 0000:03:00.0 0x030200 vfio-pci
mkdir -p "$T/etc/pt" "$T/etc/pve/qemu-server" "$T/bin" "$T/run"

# Stand-ins: one line per call with the lock's state as the tool sees it.
for tool in pt-bind pt-reset pt-console pt-drm pt-vgaarb; do
  cat >"$T/bin/$tool" <<'EOF'
#!/bin/bash
name=$(basename "$0")
# The recipe is the kit's own definition; printing it is no step.
[[ $name == pt-bind && ${1:-} == recover && " $* " == *" --recipe "* ]] && exec "$PT_REAL_BIND" "$@"
lock=free
if [[ -n ${PT_LOCK_FD:-} && $(stat -Lc %i "/proc/self/fd/$PT_LOCK_FD" 2>/dev/null) == "$(stat -c %i "$PT_ROOT/run/pt/lock")" ]] &&
  ! flock -n "$PT_ROOT/run/pt/lock" true; then
  lock=held
fi
echo "$name $* lock=$lock" >>"$PT_ROOT/calls"
[[ -n ${STUB_FAIL:-} && "$name $*" == "$STUB_FAIL"* ]] && { echo "stand-in fails with ${STUB_RC:-1}"; exit "${STUB_RC:-1}"; }
exit 0
EOF
  chmod +x "$T/bin/$tool"
done
export PT_ROOT=$T PT_BINDIR=$T/bin PT_HOOK_SYSLOG=0

# run HOOK ARGS...: status in RC, stderr+stdout in $T/out, calls in CALLS.
run() {
  : >"$T/calls"
  "$@" >"$T/out" 2>&1 </dev/null
  RC=$?
  CALLS=$(cat "$T/calls")
}
runxml() {
  : >"$T/calls"
  local xml=$1
  shift
  "$@" >"$T/out" 2>&1 <<<"$xml"
  RC=$?
  CALLS=$(cat "$T/calls")
}
G=0000:01:00.0 A=0000:01:00.1 D=0000:03:00.0
RECOVER_G="pt-bind recover --reset-method bus $G $A lock=held"

# ---------------------------------------------------------------- Proxmox
PCONF=$T/etc/pt/proxmox-hook.conf
cat >"$T/etc/pve/qemu-server/100.conf" <<'EOF'
boot: order=scsi0
hostpci0: 0000:01:00,pcie=1,x-vga=1
memory: 8192

[snap]
hostpci0: 0000:07:00,pcie=1
EOF
printf 'vm 100 hostpci\nvm 101 01:00.0\nvm 102 hostpci\nvm 103 hostpci\nvm 104 hostpci\nlock-timeout 5\n' >"$PCONF"

run "$PROXMOX" 100 pre-start
check_eq "proxmox 100 pre-start: status" 0 "$RC"
check_eq "proxmox 100 pre-start: calls" "pt-console release $G lock=held
pt-bind detach $G $A lock=held" "$CALLS"
check_eq "proxmox 100 pre-start: record" "$G $A" "$(tr '\n' ' ' <"$T/run/pt/hook-proxmox-100.devices" | sed 's/ $//')"
check_eq "proxmox: /run/pt mode" 700 "$(stat -c %a "$T/run/pt")"
check_eq "proxmox: lock file mode" 600 "$(stat -c %a "$T/run/pt/lock")"
check_eq "proxmox: record mode" 600 "$(stat -c %a "$T/run/pt/hook-proxmox-100.devices")"
for phase in post-start pre-stop; do
  run "$PROXMOX" 100 $phase
  check_eq "proxmox 100 $phase: status" 0 "$RC"
  check_eq "proxmox 100 $phase: calls" "" "$CALLS"
done
# The record wins over a config edited while the VM ran.
sed -i 's/^hostpci0: 0000:01:00,/hostpci0: 0000:03:00.0,/' "$T/etc/pve/qemu-server/100.conf"
run "$PROXMOX" 100 post-stop
check_eq "proxmox 100 post-stop: status" 0 "$RC"
check_eq "proxmox 100 post-stop: calls" "$RECOVER_G" "$CALLS"
check_has "proxmox 100 post-stop" "pt-bind recover --reset-method bus $G $A -> exit 0"
[[ -e $T/run/pt/hook-proxmox-100.devices ]] && fail "proxmox 100 post-stop: the record is left"
flock -n "$T/run/pt/lock" true || fail "proxmox: the lock is still held after the hook"
sed -i 's/^hostpci0: 0000:03:00.0,/hostpci0: 0000:01:00,/' "$T/etc/pve/qemu-server/100.conf"

# host= with a ';' list, a second hostpci line, a 3D controller (no arbiter step).
printf 'hostpci0: host=01:00.0;01:00.1,rombar=0\nhostpci1: 03:00.0,pcie=1\n' >"$T/etc/pve/qemu-server/102.conf"
run "$PROXMOX" 102 pre-start
check_eq "proxmox 102 pre-start: calls" "pt-console release $G lock=held
pt-console release $D lock=held
pt-bind detach $G $A $D lock=held" "$CALLS"
rm -f "$T/run/pt/hook-proxmox-102.devices"  # post-stop without a record reads hostpci again
run "$PROXMOX" 102 post-stop
check_eq "proxmox 102 post-stop: calls" "pt-bind recover --reset-method bus $G $A $D lock=held" "$CALLS"

# The config's own list. A GPU no longer on vfio-pci is not reset: that is
# pt-bind recover's rule (recover_test), the hook passes it on; with nothing
# left on vfio-pci the record is gone.
run "$PROXMOX" 101 pre-start
check_eq "proxmox 101 pre-start: calls" "pt-console release $G lock=held
pt-bind detach $G lock=held" "$CALLS"
ln -sfn ../../drivers/virtio-pci "$T/sys/bus/pci/devices/$G/driver"
run "$PROXMOX" 101 post-stop
check_eq "proxmox 101 post-stop: calls" "pt-bind recover --reset-method bus $G lock=held" "$CALLS"
[[ -e $T/run/pt/hook-proxmox-101.devices ]] && fail "proxmox 101 post-stop: the record is left"
ln -sfn ../../drivers/vfio-pci "$T/sys/bus/pci/devices/$G/driver"

# Refusals name the file and line and run nothing.
# Resource mappings: this node's one entry is used; none, several or no
# mapping file are refused, naming the hostpci line.
printf 'cores: 2\nhostpci0: mapping=rtx4090,pcie=1\n' >"$T/etc/pve/qemu-server/103.conf"
run "$PROXMOX" 103 pre-start
check_eq "proxmox mapping without pci.cfg: status" 2 "$RC"
check_has "proxmox mapping without pci.cfg" "$T/etc/pve/qemu-server/103.conf:2: hostpci0 uses the resource mapping 'rtx4090', but $T/etc/pve/mapping/pci.cfg cannot be read"
check_eq "proxmox mapping without pci.cfg: calls" "" "$CALLS"
mkdir -p "$T/etc/pve/mapping"
printf 'rtx4090\n\tdescription the big one\n\tmap id=10de:2684,iommugroup=14,node=pve2,path=0000:03:00.0,subsystem-id=10de:167c\n\tmap id=10de:2684,iommugroup=4,node=pve,path=0000:01:00,subsystem-id=10de:167c\n\npci: pool\n\tmap id=10de:2684,node=pve,path=0000:01:00\n\tmap id=10de:2684,node=pve,path=0000:03:00.0\n' >"$T/etc/pve/mapping/pci.cfg"
PT_PVE_NODE=pve.example.org run "$PROXMOX" 103 pre-start
check_eq "proxmox mapping: status" 0 "$RC"
check_eq "proxmox mapping: calls" "pt-console release $G lock=held
pt-bind detach $G $A lock=held" "$CALLS"
PT_PVE_NODE=pve3 run "$PROXMOX" 103 post-stop   # the record, not the mapping
check_eq "proxmox mapping post-stop: calls" "$RECOVER_G" "$CALLS"
PT_PVE_NODE=pve3 run "$PROXMOX" 103 pre-start
check_eq "proxmox mapping of another node: status" 2 "$RC"
check_has "proxmox mapping of another node" "103.conf:2: hostpci0 uses the resource mapping 'rtx4090', which has no entry for node 'pve3'"
sed -i 's/mapping=rtx4090/mapping=pool/' "$T/etc/pve/qemu-server/103.conf"
PT_PVE_NODE=pve run "$PROXMOX" 103 pre-start
check_eq "proxmox mapping with two entries: status" 2 "$RC"
check_has "proxmox mapping with two entries" "103.conf:2: hostpci0 uses the resource mapping 'pool', which has 2 entries for node 'pve'"
check_eq "proxmox refused mappings: calls" "" "$CALLS"
printf 'hostpci3: 0000:01:00.0,mdev=nvidia-63\n' >"$T/etc/pve/qemu-server/104.conf"
run "$PROXMOX" 104 pre-start
check_eq "proxmox mdev: status" 2 "$RC"
check_has "proxmox mdev" "104.conf:1: hostpci3 is a mediated device (mdev=nvidia-63)"
check_eq "proxmox mdev: calls" "" "$CALLS"
run "$PROXMOX" 105 pre-start
check_eq "proxmox unnamed VM: status" 0 "$RC"
check_has "proxmox unnamed VM" "VM 105 is not named in $PCONF; nothing to do"
check_eq "proxmox unnamed VM: calls" "" "$CALLS"
cp "$PCONF" "$T/good.conf"
printf 'vm 100 hostpci\n\nvm 100 01:00\n' >"$PCONF"
run "$PROXMOX" 100 pre-start
check_eq "proxmox VM named twice: status" 2 "$RC"
check_has "proxmox VM named twice" "$PCONF:3: VM 100 is named twice"
printf 'vm 100 hostpci 01:00\n' >"$PCONF"
run "$PROXMOX" 100 pre-start
check_has "proxmox hostpci with devices" "$PCONF:1: 'hostpci' stands alone"
printf 'vm 100 01:00.9\n' >"$PCONF"
run "$PROXMOX" 100 pre-start
check_has "proxmox bad function" "$PCONF:1: '01:00.9' is not a PCI address"
printf 'vm 100 05:00\n' >"$PCONF"
run "$PROXMOX" 100 pre-start
check_eq "proxmox missing slot: status" 1 "$RC"
check_has "proxmox missing slot" "0000:05:00: no such PCI slot ($PCONF:1)"
check_eq "proxmox refusals: calls" "" "$CALLS"
cp "$T/good.conf" "$PCONF"
run "$PROXMOX" 100 pre-boot
check_eq "proxmox unknown phase: status" 2 "$RC"
run "$PROXMOX" abc pre-start
check_eq "proxmox bad VMID: status" 2 "$RC"
check_eq "proxmox usage errors: calls" "" "$CALLS"

# A failing step: the status is passed on, and a failed detach gives the console back.
STUB_FAIL="pt-bind detach" STUB_RC=3 run "$PROXMOX" 100 pre-start
check_eq "proxmox failed detach: status" 3 "$RC"
check_eq "proxmox failed detach: calls" "pt-console release $G lock=held
pt-bind detach $G $A lock=held
pt-console restore $G lock=held" "$CALLS"
check_has "proxmox failed detach" "pt-bind detach $G $A -> exit 3"
[[ -e $T/run/pt/hook-proxmox-100.devices ]] && fail "proxmox failed detach: a record was made"
run "$PROXMOX" 100 pre-start
STUB_FAIL="pt-bind recover" STUB_RC=5 run "$PROXMOX" 100 post-stop
check_eq "proxmox failed recovery: status" 5 "$RC"
check_eq "proxmox failed recovery: calls" "$RECOVER_G" "$CALLS"
check_has "proxmox failed recovery" "stopped: pt-bind recover exited 5"
# Its functions still on vfio-pci: the next post-stop recovers what was detached.
[[ -e $T/run/pt/hook-proxmox-100.devices ]] || fail "proxmox failed recovery: the record is gone"
rm -f "$T/run/pt/hook-proxmox-100.devices"
# reset-method: auto leaves the choice to pt-reset, another method is passed
# on, an unknown one is refused before anything runs.
printf 'vm 100 hostpci\nreset-method auto\n' >"$PCONF"
run "$PROXMOX" 100 pre-start
run "$PROXMOX" 100 post-stop
check_eq "proxmox reset-method auto: status" 0 "$RC"
check_eq "proxmox reset-method auto: recover" "pt-bind recover --reset-method auto $G $A lock=held" "$CALLS"
printf 'vm 100 hostpci\nreset-method flr\n' >"$PCONF"
run "$PROXMOX" 100 pre-start
run "$PROXMOX" 100 post-stop
check_eq "proxmox reset-method flr: recover" "pt-bind recover --reset-method flr $G $A lock=held" "$CALLS"
printf 'vm 100 hostpci\nreset-method hard\n' >"$PCONF"
run "$PROXMOX" 100 post-stop
check_eq "proxmox reset-method hard: status" 2 "$RC"
check_eq "proxmox reset-method hard: calls" "" "$CALLS"
check_has "proxmox reset-method hard" "$PCONF:2: want 'reset-method METHOD'"

# The lock held by someone else: 75 after lock-timeout, nothing run.
printf 'vm 100 hostpci\nlock-timeout 0\n' >"$PCONF"
flock "$T/run/pt/lock" sleep 5 &
holder=$!
sleep 0.3
run "$PROXMOX" 100 pre-start
check_eq "proxmox busy lock: status" 75 "$RC"
check_eq "proxmox busy lock: calls" "" "$CALLS"
kill $holder
wait $holder 2>/dev/null

# ---------------------------------------------------------------- libvirt
LCONF=$T/etc/pt/libvirt-hook.conf
XML="<domain type='kvm'><name>win10</name><devices>
<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/></source>
<address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x1'/></hostdev>
<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>
</devices></domain>"
printf 'domain win10 0000:01:00\ndomain linux 03:00.0\n' >"$LCONF"
runxml "$XML" "$LIBVIRT" win10 prepare begin -
check_eq "libvirt win10 prepare begin: status" 0 "$RC"
check_eq "libvirt win10 prepare begin: calls" "pt-console release $G lock=held
pt-bind detach $G $A lock=held" "$CALLS"
check_has "libvirt managed='yes'" "<hostdev> for $A is managed='yes'"
grep -qF "for $G is managed" "$T/out" && fail "libvirt: managed='no' warned about"
for ops in "start begin" "started begin" "stopped end" "release begin" "migrate begin"; do
  # shellcheck disable=SC2086
  runxml "$XML" "$LIBVIRT" win10 $ops -
  check_eq "libvirt win10 $ops: status" 0 "$RC"
  check_eq "libvirt win10 $ops: calls and output" "" "$CALLS$(cat "$T/out")"
done
runxml "$XML" "$LIBVIRT" win10 release end -
check_eq "libvirt win10 release end: status" 0 "$RC"
check_eq "libvirt win10 release end: calls" "$RECOVER_G" "$CALLS"
runxml "$XML" "$LIBVIRT" other prepare begin -
check_eq "libvirt unnamed domain: status, calls and output" "0" "$RC$CALLS$(cat "$T/out")"
printf 'domain win10 0000:01:00\ndomain\n' >"$LCONF"
runxml "$XML" "$LIBVIRT" win10 prepare begin -
check_eq "libvirt broken config: status" 2 "$RC"
check_has "libvirt broken config" "$LCONF:2: want 'domain NAME DEVICE...'"
runxml "$XML" "$LIBVIRT" win10 started begin -
check_eq "libvirt broken config, another op: status" 0 "$RC"
check_eq "libvirt broken config: calls" "" "$CALLS"

# ---------------------------------------------------------------- examples
# The shipped example configurations parse; their VMs/domains are planned.
PT_PROXMOX_HOOK_CONF=$src/contrib/proxmox/proxmox-hook.conf run "$PROXMOX" 999 pre-start
check_eq "example proxmox-hook.conf: status" 0 "$RC"
check_has "example proxmox-hook.conf" "VM 999 is not named"
PT_LIBVIRT_HOOK_CONF=$src/contrib/libvirt/libvirt-hook.conf runxml "" "$LIBVIRT" win10 prepare begin -
check_eq "example libvirt-hook.conf: calls" "pt-console release $G lock=held
pt-bind detach $G $A lock=held" "$CALLS"

# ---------------------------------------------------------------- one code
# Both hooks carry the same helpers and detach/recover sequence, each being one
# self-contained file; the shared block must not drift between them.
shared() { sed -n '/^# >>> shared/,/^# <<< shared/p' "$1"; }
: >"$T/out"
[[ -n $(shared "$PROXMOX") ]] || fail "the shared block of pt-hookscript" "present" "missing"
check_eq "the shared block of both hooks" "$(shared "$PROXMOX")" "$(shared "$LIBVIRT")"

# ---------------------------------------------------------------- shellcheck
if command -v shellcheck >/dev/null; then
  shellcheck "$PROXMOX" "$LIBVIRT" >"$T/out" 2>&1 || fail "shellcheck of the hooks"
else
  echo "note: shellcheck not installed; the hooks were not linted"
fi

if ((failures)); then
  echo "hooks: $failures failure(s)"
  exit 1
fi
echo "hooks: all checks passed"

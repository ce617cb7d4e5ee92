# pt-vm: topology=sriov
# bind-sriov-variant.sh: pt-bind vfs binds the VFs of QEMU's SR-IOV NVMe
# controller to the VFIO variant driver modules.alias names for them. The
# variant double (tests/vm/doubles/ptd_vfio_variant.c: module
# ptd_vfio_variant, pci_driver "ptd-vfio-variant", alias
# vfio_pci:v00001B36d00000010sv*sd*bc*sc*i*, no ID table) is installed into
# /lib/modules and depmod run, as a distribution ships such a driver. While
# it is not there, and with --to vfio-pci, the VFs go to vfio-pci; vfs 0
# removes the VFs from whichever driver they are on. /bin/depmod is kmod's
# (the shell would run busybox's applet, which writes no modules.alias.bin,
# the index libkmod reads).
. /pt-vm/lib.sh

PF=$(find_pci 1b36 0010) || skip "no QEMU NVMe controller (1b36:0010) in this machine"
[ -e "/sys/bus/pci/devices/$PF/sriov_totalvfs" ] || skip "$PF has no sriov_totalvfs (kernel without CONFIG_PCI_IOV?)"
KO=/pt-vm/doubles/ptd_vfio_variant.ko
[ -f "$KO" ] || fail "the variant driver double" "$KO" "$(ls /pt-vm/doubles 2>&1 | tr '\n' ' ')"
modprobe nvme 2>/dev/null || true
wait_for "[ \"\$(driver_of $PF)\" = nvme ]" 20 || fail "driver of $PF" nvme "$(driver_of "$PF")"
modprobe vfio-pci 2>/dev/null || true
S=/sys/bus/pci/devices/$PF
MODDIR=/lib/modules/$(uname -r)
ALIAS=vfio_pci:v00001B36d00000010

vfs_of() { for l in "$S"/virtfn*; do basename "$(readlink "$l")"; done; }

say "no variant driver in modules.alias: vfio-pci"
expect_rc 0 pt-bind --dry-run vfs "$PF" 2
assert_out_has "modules.alias: no variant driver for $ALIAS"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 2
for vf in $(vfs_of); do
  assert_driver "$vf" vfio-pci
  assert_vfio_node "$vf"
  case $(cat "/sys/bus/pci/devices/$vf/modalias") in
    pci:v00001B36d00000010sv*) ;;
    *) fail "modalias of $vf" "pci:v00001B36d00000010sv…" "$(cat "/sys/bus/pci/devices/$vf/modalias")" ;;
  esac
done
expect_rc 0 timeout 60 pt-bind vfs "$PF" 0
assert_eq "sriov_numvfs" 0 "$(cat "$S/sriov_numvfs")"

say "the double installed: depmod puts its alias into modules.alias"
mkdir -p "$MODDIR/extra"
cp "$KO" "$MODDIR/extra/"
/bin/depmod -a || fail "depmod -a" "exit 0" "failed"
grep -q "^alias $ALIAS"'sv\*sd\*bc\*sc\*i\* ptd_vfio_variant$' "$MODDIR/modules.alias" ||
  fail "modules.alias" "the alias of ptd_vfio_variant" "$(grep vfio_pci: "$MODDIR/modules.alias")"
expect_rc 0 pt-bind --dry-run vfs "$PF" 2
assert_out_has "load module ptd_vfio_variant"
assert_out_has "to ptd_vfio_variant (driver_override, drivers_probe; modules.alias: $ALIAS"
assert_out_has "-> ptd_vfio_variant)"
[ ! -d /sys/module/ptd_vfio_variant ] || fail "ptd_vfio_variant after a dry run" "not loaded" "loaded"
assert_eq "sriov_numvfs after a dry run" 0 "$(cat "$S/sriov_numvfs")"

say "vfs 2: the VFs on the variant driver, the journal says so"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 2
assert_eq "sriov_numvfs" 2 "$(cat "$S/sriov_numvfs")"
assert_eq "sriov_drivers_autoprobe restored" 1 "$(cat "$S/sriov_drivers_autoprobe")"
[ -e /sys/module/ptd_vfio_variant/drivers/pci:ptd-vfio-variant ] ||
  fail "/sys/module/ptd_vfio_variant/drivers" "pci:ptd-vfio-variant" "$(ls /sys/module/ptd_vfio_variant/drivers 2>&1)"
VF0=$(basename "$(readlink "$S/virtfn0")")
VF1=$(basename "$(readlink "$S/virtfn1")")
for vf in $VF0 $VF1; do
  assert_driver "$vf" ptd-vfio-variant
  assert_override "$vf" ptd-vfio-variant
  assert_out_has "$vf  VF of $PF on ptd-vfio-variant"
done
assert_eq "probes of the double" 2 "$(cat /sys/module/ptd_vfio_variant/parameters/probes)"
assert_driver "$PF" nvme
assert_contains "journal's record of $PF" "\"drivers\":{\"$VF0\":\"ptd-vfio-variant\",\"$VF1\":\"ptd-vfio-variant\"}" "$(journal_text | tr -d ' \n')"
expect_rc 0 pt-bind vfs "$PF" 2
assert_out_has "already has 2 VFs on ptd-vfio-variant"
if command -v jq >/dev/null 2>&1; then
  expect_rc 0 pt-bind --json vfs "$PF" 2
  assert_eq "functions[0].driver" ptd-vfio-variant "$(printf '%s' "$OUT" | jq -r '.functions[0].driver')"
  assert_contains "functions[0].why" "modules.alias: $ALIAS" "$(printf '%s' "$OUT" | jq -r '.functions[0].why')"
fi

say "vfs 0: the VFs leave the variant driver and go"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 0
assert_eq "sriov_numvfs" 0 "$(cat "$S/sriov_numvfs")"
assert_eq "sriov_drivers_autoprobe" 1 "$(cat "$S/sriov_drivers_autoprobe")"
[ ! -e "/sys/bus/pci/devices/$VF0" ] || fail "$VF0 after vfs 0" "gone" "still there"
assert_driver "$PF" nvme
assert_lacks "journal after vfs 0" "\"sriov\"" "$(journal_text)"

say "--to vfio-pci: the variant is passed over"
expect_rc 0 timeout 60 pt-bind vfs --to vfio-pci "$PF" 2
for vf in $(vfs_of); do
  assert_driver "$vf" vfio-pci
  assert_override "$vf" vfio-pci
done
assert_out_lacks "ptd-vfio-variant"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 0
assert_eq "sriov_numvfs" 0 "$(cat "$S/sriov_numvfs")"

say "the double removed again (rmmod, depmod): vfio-pci"
/bin/rmmod ptd_vfio_variant || fail "rmmod ptd_vfio_variant" "exit 0" "failed"
rm -f "$MODDIR/extra/ptd_vfio_variant.ko"
/bin/depmod -a || fail "depmod -a" "exit 0" "failed"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 2
for vf in $(vfs_of); do assert_driver "$vf" vfio-pci; done
[ ! -d /sys/module/ptd_vfio_variant ] || fail "ptd_vfio_variant" "not loaded" "loaded"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 0
assert_eq "sriov_numvfs" 0 "$(cat "$S/sriov_numvfs")"
pass

# bind-sriov.sh: pt-bind vfs on QEMU's SR-IOV NVMe controller: show decodes
# the PF, vfs 2 creates two VFs with autoprobe off and binds them to
# vfio-pci (their /dev/vfio groups appear, nvme never sees them), a held VF
# group refuses any change, vfs 0 removes them and leaves the PF as it was.
# pt-vm: topology=sriov
. /pt-vm/lib.sh

PF=$(find_pci 1b36 0010) || skip "no QEMU NVMe controller (1b36:0010) in this machine"
[ -e "/sys/bus/pci/devices/$PF/sriov_totalvfs" ] || skip "$PF has no sriov_totalvfs (kernel without CONFIG_PCI_IOV?)"
modprobe nvme 2>/dev/null || true
wait_for "[ \"\$(driver_of $PF)\" = nvme ]" 20 || fail "driver of $PF" nvme "$(driver_of "$PF")"
modprobe vfio-pci 2>/dev/null || true
S=/sys/bus/pci/devices/$PF
assert_eq "sriov_totalvfs of $PF" 2 "$(cat "$S/sriov_totalvfs")"
assert_eq "sriov_numvfs of $PF" 0 "$(cat "$S/sriov_numvfs")"
assert_eq "sriov_drivers_autoprobe of $PF" 1 "$(cat "$S/sriov_drivers_autoprobe")"

say "show decodes the SR-IOV capability"
expect_rc 0 pt-bind show "$PF"
assert_out_has "sr-iov:           PF, 0 of 2 VFs, VF device 0010"
assert_out_has "autoprobe on"
if command -v jq >/dev/null 2>&1; then
  expect_rc 0 pt-bind --json show "$PF"
  assert_eq "sriov.total_vfs" 2 "$(printf '%s' "$OUT" | jq -r .sriov.total_vfs)"
  assert_eq "sriov.capability.total_vfs" 2 "$(printf '%s' "$OUT" | jq -r .sriov.capability.total_vfs)"
fi

say "refusals change nothing"
expect_rc 2 pt-bind vfs "$PF" 3
assert_out_has "at most 2 VFs"
expect_rc 2 pt-bind vfs "$GPU" 1
assert_out_has "no SR-IOV physical function"
expect_rc 1 pt-bind vfs --to no-such-driver "$PF" 2
assert_out_has "no-such-driver: no PCI driver and no kernel module of that name"
assert_eq "sriov_drivers_autoprobe after --to no-such-driver" 1 "$(cat "$S/sriov_drivers_autoprobe")"
[ -f "$PT_JOURNAL" ] && fail "journal after a refused --to" "none" "$(cat "$PT_JOURNAL")"
expect_rc 0 pt-bind --dry-run vfs "$PF" 2
assert_out_has "sriov_drivers_autoprobe 0"
assert_eq "sriov_numvfs after refusals and a dry run" 0 "$(cat "$S/sriov_numvfs")"

say "vfs 2: two VFs on vfio-pci"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 2
assert_eq "sriov_numvfs" 2 "$(cat "$S/sriov_numvfs")"
assert_eq "sriov_drivers_autoprobe restored" 1 "$(cat "$S/sriov_drivers_autoprobe")"
VF0=$(basename "$(readlink "$S/virtfn0")")
VF1=$(basename "$(readlink "$S/virtfn1")")
[ -n "$VF0" ] && [ -n "$VF1" ] || fail "virtfn links of $PF" "virtfn0 virtfn1" "$(ls "$S")"
for vf in $VF0 $VF1; do
  assert_driver "$vf" vfio-pci
  assert_override "$vf" vfio-pci
  assert_vfio_node "$vf"
  assert_eq "physfn of $vf" "$PF" "$(link_name "$vf" physfn)"
done
assert_driver "$PF" nvme
assert_contains "journal's SR-IOV record of $PF" "\"$PF\"" "$(journal_text | tr -d ' \n' | sed -n 's/.*"sriov":{//p')"
expect_rc 0 pt-bind show "$VF0"
assert_out_has "VF of $PF"
expect_rc 0 pt-bind vfs "$PF" 2
assert_out_has "already has 2 VFs on vfio-pci"

say "a process holds the vfio group of $VF1: no change"
group=$(group_of "$VF1")
hold_open "/dev/vfio/$group"
holder=$HOLDER
expect_rc 1 timeout 60 pt-bind vfs "$PF" 0
assert_out_has "in use: pid $holder"
expect_rc 1 timeout 60 pt-bind vfs "$PF" 1
assert_eq "sriov_numvfs while held" 2 "$(cat "$S/sriov_numvfs")"
assert_driver "$VF1" vfio-pci
release

say "vfs 0: the VFs go, the PF is as it was"
expect_rc 0 timeout 60 pt-bind vfs "$PF" 0
assert_eq "sriov_numvfs" 0 "$(cat "$S/sriov_numvfs")"
assert_eq "sriov_drivers_autoprobe" 1 "$(cat "$S/sriov_drivers_autoprobe")"
[ ! -e "/sys/bus/pci/devices/$VF0" ] || fail "$VF0 after vfs 0" "gone" "still there"
[ ! -e "$S/virtfn0" ] || fail "virtfn0 after vfs 0" "gone" "still there"
assert_driver "$PF" nvme
assert_lacks "journal after vfs 0" "\"sriov\"" "$(journal_text)"

say "pt.conf's vfs = 2: pt-bind boot makes them"
mkdir -p /etc/pt
printf '[device.nv]\nbdf = "%s"\nvfs = 2\n' "$PF" >/etc/pt/pt.conf
chmod 0644 /etc/pt/pt.conf
expect_rc 0 pt-bind --dry-run boot
assert_out_has "vfs: write $S/sriov_numvfs 2"
assert_eq "sriov_numvfs after boot --dry-run" 0 "$(cat "$S/sriov_numvfs")"
expect_rc 0 timeout 60 pt-bind boot
assert_out_has "VF of $PF on vfio-pci"
assert_eq "sriov_numvfs after boot" 2 "$(cat "$S/sriov_numvfs")"
for l in "$S"/virtfn*; do
  assert_driver "$(basename "$(readlink "$l")")" vfio-pci
done
expect_rc 0 timeout 60 pt-bind vfs "$PF" 0
assert_eq "sriov_numvfs" 0 "$(cat "$S/sriov_numvfs")"
rm -f /etc/pt/pt.conf
pass

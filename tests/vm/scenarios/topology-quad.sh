# pt-vm: topology=quad
# topology-quad.sh: the quad topology is what reset-parallel assumes: four
# GPUs, each alone behind its own root port, on virtio-pci, in IOMMU groups of
# their own; no GPU + audio slot.
. /pt-vm/lib.sh

say "kernel $(uname -r), topology $PT_VM_TOPOLOGY"
pt_vm_topology
assert_eq "topology" quad "$PT_VM_TOPOLOGY"
assert_eq "audio function" "" "$AUD"
need_solo 4
assert_eq "solo GPUs" "0000:01:00.0 0000:02:00.0 0000:03:00.0 0000:04:00.0" "$SOLOS"
groups=
for d in $SOLOS; do
  assert_driver "$d" virtio-pci
  assert_eq "members of group $(group_of "$d")" "$d" "$(ls "/sys/kernel/iommu_groups/$(group_of "$d")/devices")"
  [ -n "$(drm_card_of "$d")" ] || fail "DRM card of $d" "/dev/dri/cardN" "none"
  groups="$groups $(group_of "$d")"
  x=$(cap_offset "$(parent_of "$d")" 0x10)
  lnksta=$(cfg_read "$(parent_of "$d")" $((x + 0x12)) 2)
  [ $((lnksta & 0x2000)) -ne 0 ] || fail "Link Status of $(parent_of "$d")" "Data Link Layer Link Active" "$(printf '0x%x' "$lnksta")"
done
# shellcheck disable=SC2086 # one group per line
assert_eq "distinct IOMMU groups" 4 "$(echo $groups | tr ' ' '\n' | sort -u | wc -l)"
say "groups:$groups; cards: $(ls /dev/dri | tr '\n' ' ')"
pass

# pt-vm: topology=solo
# topology-solo.sh: the solo topology is what the reset scenarios assume: the
# GPU + audio slot as in default, and a second GPU alone behind its own root
# port, on virtio-pci, in its own IOMMU group, with FLR, PM and a bus reset.
. /pt-vm/lib.sh

say "kernel $(uname -r), topology $PT_VM_TOPOLOGY"
pt_vm_topology
assert_eq "topology" solo "$PT_VM_TOPOLOGY"
assert_eq "GPU function" 0000:01:00.0 "$GPU"
assert_eq "audio function" 0000:01:00.1 "$AUD"
assert_driver "$AUD" snd_hda_intel
need_solo 1
assert_eq "solo GPUs" 0000:02:00.0 "$(solo_gpus | tr '\n' ' ' | sed 's/ $//')"
assert_driver "$SOLO" virtio-pci
assert_eq "class of $SOLO" 0x038000 "$(cat "/sys/bus/pci/devices/$SOLO/class")"
bridge=$(parent_of "$SOLO")
assert_eq "functions behind $bridge" "$SOLO" "$(children_of "$bridge")"
[ "$(group_of "$SOLO")" != "$(group_of "$GPU")" ] || fail "IOMMU group of $SOLO" "its own" "$(group_of "$SOLO"), shared with $GPU"
assert_eq "members of group $(group_of "$SOLO")" "$SOLO" "$(ls "/sys/kernel/iommu_groups/$(group_of "$SOLO")/devices")"
[ -n "$(drm_card_of "$SOLO")" ] || fail "DRM card of $SOLO" "/dev/dri/cardN" "none"
[ -n "$(cap_offset "$SOLO" 1)" ] || fail "PM capability of $SOLO" "present" "none"
[ -n "$(cap_offset "$SOLO" 0x10)" ] || fail "PCIe capability of $SOLO" "present" "none"
if kernel_has_reset_method; then
  assert_eq "reset_method of $SOLO" "flr pm bus" "$(reset_method_of "$SOLO")"
fi
say "hotplug slots: $(for s in /sys/bus/pci/slots/*; do printf '%s=%s ' "$(basename "$s")" "$(cat "$s/address")"; done)"
slot=$(echo "$SOLO" | sed 's/\.[0-7]$//')
grep -qx "$slot" /sys/bus/pci/slots/*/address || fail "hotplug slot of $SOLO" "one at $slot" "$(cat /sys/bus/pci/slots/*/address 2>&1 | tr '\n' ' ')"
# The root port reports its link up (native hotplug; see README).
x=$(cap_offset "$bridge" 0x10)
lnksta=$(cfg_read "$bridge" $((x + 0x12)) 2)
[ $((lnksta & 0x2000)) -ne 0 ] || fail "Link Status of $bridge" "Data Link Layer Link Active" "$(printf '0x%x' "$lnksta")"
pass

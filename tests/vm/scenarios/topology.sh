# topology.sh: the testbed itself is what the bind scenarios assume: a GPU and
# its audio function in slot 01:00, one IOMMU group, on their host drivers.
. /pt-vm/lib.sh

say "kernel $(uname -r)"
pt_vm_topology
say "modules"
cut -d' ' -f1 /proc/modules | sort | tr '\n' ' '; echo

assert_eq "GPU function" 0000:01:00.0 "$GPU"
assert_eq "audio function" 0000:01:00.1 "$AUD"
assert_driver "$GPU" virtio-pci
assert_driver "$AUD" snd_hda_intel
assert_eq "IOMMU group of the audio function" "$(group_of "$GPU")" "$(group_of "$AUD")"
[ "$(group_of "$GPU")" != none ] || fail "IOMMU group of $GPU" "a group" none
assert_override "$GPU" "(null)"
assert_override "$AUD" "(null)"
[ -n "$(drm_card_of "$GPU")" ] || fail "DRM card of $GPU" "/dev/dri/cardN" "none"
[ -c "$(drm_card_of "$GPU")" ] || fail "device node $(drm_card_of "$GPU")" "a character device" "missing"
say "GPU card $(drm_card_of "$GPU"), parent bridge $(parent_of "$GPU"), boot_vga $(cat /sys/bus/pci/devices/$GPU/boot_vga 2>/dev/null)"
say "members of group $(group_of "$GPU"): $(ls "/sys/kernel/iommu_groups/$(group_of "$GPU")/devices" | tr '\n' ' ')"
[ -c /dev/vfio/vfio ] || fail "/dev/vfio/vfio" "a character device" "$(ls -l /dev/vfio 2>&1)"
for t in pt-bind flock modprobe; do
  command -v $t >/dev/null || echo "note: $t is not on PATH"
done
ls -l /usr/local/bin /lib/*.so 2>/dev/null
pass

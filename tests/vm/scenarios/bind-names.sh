# bind-names.sh: on the guest's real kernel, with the host's pci.ids at
# /usr/share/misc/pci.ids, pt-bind list and show name the virtio-vga GPU and
# its HDA audio function as lspci would (issue 15). Read-only.
. /pt-vm/lib.sh

pt_vm_topology
[ -f /usr/share/misc/pci.ids ] || fail "/usr/share/misc/pci.ids" "the host's copy" "missing"
gv=$(cat "/sys/bus/pci/devices/$GPU/vendor") gd=$(cat "/sys/bus/pci/devices/$GPU/device")
av=$(cat "/sys/bus/pci/devices/$AUD/vendor") ad=$(cat "/sys/bus/pci/devices/$AUD/device")
say "GPU $gv:$gd, audio $av:$ad"
assert_eq "GPU vendor" 0x1af4 "$gv"
assert_eq "audio vendor" 0x8086 "$av"

expect_json 0 pt-bind --json list
assert_json "GPU names" '.[] | select(.device == $d) | .vendor_name == "Red Hat, Inc." and .device_name == "Virtio 1.0 GPU"' --arg d "$GPU"
assert_json "audio names" '.[] | select(.device == $d) | .vendor_name == "Intel Corporation" and .device_name == "82801I (ICH9 Family) HD Audio Controller"' --arg d "$AUD"
# Without jq in the guest the fields are still checked as text.
assert_out_has '"vendor_name": "Red Hat, Inc."'
assert_out_has '"device_name": "Virtio 1.0 GPU"'
assert_out_has '"device_name": "82801I (ICH9 Family) HD Audio Controller"'

expect_rc 0 pt-bind list
assert_out_has "Red Hat, Inc. Virtio 1.0 GPU"
assert_out_has "Intel Corporation 82801I (ICH9 Family) HD Audio Controller"
expect_rc 0 pt-bind show "$AUD"
assert_out_has "Audio device: Intel Corporation 82801I (ICH9 Family) HD Audio Controller"

pass

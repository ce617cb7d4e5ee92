# bind-names.sh: on the guest's real kernel, with the host's pci.ids at
# /usr/share/misc/pci.ids, pt-bind list and show name the virtio-vga GPU and
# its HDA audio function as lspci would (issue 15); pt-bind export prints
# the engines' entries with the IDs and IOMMU group the kernel reports
# (issue 17). Read-only.
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

say "pt-bind export: the other engines' entries from the kernel's IDs and group"
group=$(basename "$(readlink "/sys/bus/pci/devices/$GPU/iommu_group")")
gsv=$(cat "/sys/bus/pci/devices/$GPU/subsystem_vendor") gsd=$(cat "/sys/bus/pci/devices/$GPU/subsystem_device")
slot=${GPU%.*}
expect_rc 0 pt-bind export proxmox "$slot" --name gpu --node testbed
echo "$OUT"
assert_out_has "$(printf 'gpu\n\tmap id=%s:%s,iommugroup=%s,node=testbed,path=%s,subsystem-id=%s:%s' \
  "${gv#0x}" "${gd#0x}" "$group" "$slot" "${gsv#0x}" "${gsd#0x}")"
expect_rc 0 pt-bind export nova "$slot" --name gpu
echo "$OUT"
assert_out_has "device_spec = {\"address\":\"$GPU\",\"vendor_id\":\"${gv#0x}\",\"product_id\":\"${gd#0x}\",\"managed\":\"no\"}"
assert_out_has "device_spec = {\"address\":\"$AUD\",\"vendor_id\":\"${av#0x}\",\"product_id\":\"${ad#0x}\",\"managed\":\"no\"}"
expect_rc 0 pt-bind export kubevirt "$GPU"
assert_out_has "pciVendorSelector: \"$(echo "${gv#0x}:${gd#0x}" | tr a-f A-F)\""
expect_rc 2 pt-bind export vmware "$GPU"
assert_out_has "vmware: is not an export format"

pass

# pt-vm: topology=doubles
# origin-vgaarb.sh: pt-vgaarb against the drivers the origin story is about.
#  - nvidia (the double calls vga_set_legacy_decoding(pdev, VGA_RSRC_NONE) in
#    probe, like nv_pci_probe, and registers no decode callback): after the
#    admin's own cycle there is no journal record, and pt-vgaarb restore
#    repairs decodes=none to io+mem, read back from the arbiter. After a
#    pt-bind detach/attach the journal holds what nvidia itself had set at
#    boot, none; for the boot VGA that is the driver's none, not the
#    firmware's state, and restore sets io+mem.
#  - amdgpu (the double registers a decode callback, like
#    amdgpu_device_init): the kernel ignores user space's decodes, and
#    pt-vgaarb restore exits 1 explaining that the driver's callback owns them.
#  - the test helpers' bad input: clear errors.
. /pt-vm/lib.sh

doubles_setup
gpu=$(full_bdf "$GPU")

say "nvidia: decodes=none after the admin's cycle (no pt-bind, so no journal record)"
rebind "$gpu" vfio-pci
rebind "$AUD" vfio-pci
assert_eq "decodes on vfio-pci" io+mem "$(arb_field "$gpu" decodes)"
rebind "$gpu" "$NV_DRIVER"
rebind "$AUD" ""
assert_driver "$gpu" "$NV_DRIVER"
assert_eq "decodes after nvidia's probe" none "$(arb_field "$gpu" decodes)"
assert_eq "journal record" null "$(journal_vga "$gpu" decodes)"
expect_rc 0 pt-vgaarb restore "$gpu"
assert_out_has "decodes none -> io+mem"
assert_out_has "no journal record"
assert_eq "decodes after restore" io+mem "$(arb_field "$gpu" decodes)"
expect_rc 0 pt-vgaarb restore "$gpu"
assert_out_has "already"

say "nvidia: after pt-bind detach/attach the journal holds nvidia's own none; the boot VGA gets io+mem"
assert_eq "the GPU is the boot VGA" 1 "$(cat /sys/bus/pci/devices/$gpu/boot_vga)"
expect_rc 0 pt-vgaarb decodes "$gpu" none
expect_rc 0 pt-bind detach "$SLOT"
assert_eq "journal: recorded decodes" none "$(journal_vga "$gpu" decodes)"
assert_eq "journal: recorded driver" nvidia "$(journal_vga "$gpu" driver)"
expect_rc 0 pt-bind attach "$SLOT"
assert_eq "decodes after attach (nvidia's probe)" none "$(arb_field "$gpu" decodes)"
expect_rc 0 pt-vgaarb restore "$gpu"
assert_out_has "from the journal: decodes=none"
assert_out_has "the boot VGA gets io+mem"
assert_eq "decodes after restore from the journal" io+mem "$(arb_field "$gpu" decodes)"
assert_eq "journal record dropped" null "$(journal_vga "$gpu" decodes)"

say "amdgpu: its decode callback owns decodes"
expect_rc 0 pt-vgaarb decodes "$gpu" none
rebind "$gpu" "$AMD_DRIVER"
assert_driver "$gpu" "$AMD_DRIVER"
assert_contains "kernel log" "VGA decode callback registered" "$(dmesg | grep ptd_amdgpu)"
line=$(arb_line "$gpu")
expect_rc 1 pt-vgaarb restore "$gpu"
assert_out_has "the kernel ignored \"decodes io+mem\""
assert_out_has "Its driver, amdgpu, registered a VGA decode callback"
assert_eq "arbiter line after the ignored restore" "$line" "$(arb_line "$gpu")"
expect_rc 1 pt-vgaarb decodes "$gpu" io+mem
assert_out_has "decode callback"
assert_eq "decodes with amdgpu bound" none "$(arb_field "$gpu" decodes)"

say "back on nvidia (no callback): restore applies again"
rebind "$gpu" "$NV_DRIVER"
expect_rc 0 pt-vgaarb restore "$gpu"
assert_eq "decodes after restore on nvidia" io+mem "$(arb_field "$gpu" decodes)"

say "the test helpers' bad input"
expect_rc 2 pt-vm-nvquery
assert_out_has "usage: pt-vm-nvquery /dev/nvidiaN"
expect_rc 2 pt-vm-nvquery /dev/nvidia7
assert_out_has "No such file or directory"
expect_rc 2 pt-vm-nvquery /dev/null
assert_out_has "not its device"
expect_rc 2 pt-vm-nvquery /tmp
assert_out_has "is not a character device"
expect_rc 2 pt-vm-standin "$gpu" --hold soon
assert_out_has "--hold wants whole seconds"
expect_rc 2 pt-vm-standin "$gpu" --bogus
assert_out_has "unknown argument '--bogus'"
expect_rc 1 sh -c ". /pt-vm/lib.sh; nv_dirty $AUD"
assert_out_has "nv_dirty: driver of $AUD"
assert_out_has "EXPECTED: nvidia"
expect_rc 1 sh -c ". /pt-vm/lib.sh; nv_fan 0000:09:00.0"
assert_out_has "no /sys/bus/pci/devices/0000:09:00.0"
expect_rc 1 sh -c ". /pt-vm/lib.sh; nv_query $gpu soon"
assert_out_has "nv_query: seconds"
expect_rc 1 sh -c ". /pt-vm/lib.sh; vm_uses $gpu"
assert_out_has "EXPECTED: vfio-pci"
pass

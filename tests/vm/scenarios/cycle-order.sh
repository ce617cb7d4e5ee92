# pt-vm: topology=console
# cycle-order.sh: the evidence behind the order of the recovery recipe
# (pt(7), RECOVERY, "Why this order"), as assertions:
#  1. while the VM stand-in holds the GPU, its command register has bus
#     mastering on and memory decode off, and PMCSR says D3hot;
#  2. when the stand-in exits, vfio-pci resets what it can by itself: an FLR
#     of the GPU on the config-write trace, the GPU's marked register
#     cleared, the header restored; the audio function (no reset of its own)
#     keeps its mark until it too was used and closed, when vfio-pci resets
#     the slot;
#  3. attaching without pt-reset works here (the PCI core wakes the function
#     to D0 before the host driver probes): the reset is for device state;
#  4. a reset after the attach is refused for the boot VGA device while
#     fbcon is bound (exit 1), and nothing is reset.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
boot=$(cycle_state)
expect_rc 0 pt-console release "$gpu"
expect_rc 0 pt-bind detach "$SLOT"
mark_device "$gpu" "$aud"

say "1. the VM holds the GPU"
pt-vm-standin "$gpu" --hold 60 >/tmp/vm.out 2>&1 &
vm=$!
wait_for "[ \$(cmd_reg $gpu) = 0x0105 ]" 20 || fail "command register of $gpu while the VM holds it" 0x0105 "$(cmd_reg "$gpu")"
assert_eq "power state of $gpu while the VM holds it" D3hot "$(pm_state "$gpu")"
echo "   held: $(cycle_state | head -n1)"

say "2. the VM exits: vfio-pci's release"
kill $vm
wait $vm 2>/dev/null
wait_for "[ \$(cmd_reg $gpu) = 0x0103 ]" 20 || fail "command register of $gpu after the VM" "0x0103 (restored by vfio-pci)" "$(cmd_reg "$gpu")"
assert_reset_cycle "$gpu" flr
dmesg | grep "vfio-pci $gpu: restor" | tail -n 3 | sed 's/^/   kernel: /'
assert_was_reset "$gpu"
assert_kept_state "$aud"
pt-vm-standin "$aud" >/dev/null || fail "stand-in on $aud" 0 "$?"
assert_was_reset "$aud"
echo "   vfio-pci reset $aud only once it had been used and closed as well"

say "3. attach without a reset"
expect_rc 0 pt-bind attach "$gpu"
expect_rc 0 pt-drm wait "$gpu"
expect_rc 0 pt-vgaarb restore "$gpu"
expect_rc 0 pt-console restore "$gpu"
expect_rc 0 pt-drm check "$gpu"
assert_eq "state after the attach without a reset" "$boot" "$(cycle_state)"

say "4. a reset under the host driver"
cfg_trace_start
expect_rc 1 pt-reset "$gpu"
assert_out_has "boot VGA device and a console is bound"
assert_no_cfg_writes "$gpu"
pass

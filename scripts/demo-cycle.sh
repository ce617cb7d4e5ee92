# pt-vm: topology=console
# The quick-start demo, part 1, run inside the QEMU guest by scripts/demo (and
# as the VM test vm.demo-cycle): the whole passthrough cycle on the emulated
# GPU (virtio-vga, the boot VGA device that carries the console) and its
# audio function (ich9-intel-hda). pt snapshots the slot at boot; then the
# console is released, both functions go to vfio-pci, the VM stand-in uses
# them and is killed, and `pt recover` runs the recovery recipe of pt(7).
# After each step `pt diff` shows what it changed; at the end the state is
# compared with the boot snapshot, and must be the same.
. /pt-vm/lib.sh
. /pt-vm/files/demo-lib.sh

gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
# The DRM card must be up before the boot snapshot, or the card appearing
# later would be a difference.
wait_for "pt-drm check $gpu >/dev/null 2>&1" 20 || fail "pt-drm check at boot" 0 "$(pt-drm check "$gpu" 2>&1)"

note "part 1: the passthrough cycle on an emulated GPU, as pt sees it"
say_more "$gpu (virtio-vga) is the boot GPU, fbcon shows the console on its framebuffer;"
say_more "$aud (ich9-intel-hda) stands in for its HDMI audio. The state at boot:"
show 0 pt status "$SLOT"
snapshot_boot

step 1 "release the console" pt-console release "$gpu"
step 2 "detach GPU+audio to vfio-pci" pt-bind detach "$SLOT"
assert_detached

# The VM: the stand-in opens the group through VFIO, turns bus mastering on
# and memory decode off and puts the GPU into D3hot; it holds the group (the
# VM runs) until it is killed without cleanup; then it uses the audio
# function too.
vm_start() {
  pt-vm-standin "$gpu" --hold 600 >/tmp/vm.out 2>&1 &
  VM=$!
  wait_for "[ \$(pm_state $gpu) = D3hot ] && [ \$((\$(cfg_read $gpu 4 2) & 6)) = 4 ]" 20 ||
    fail "the VM stand-in on $gpu" "bus master on, memory off, D3hot" "$(cmd_reg "$gpu") $(pm_state "$gpu"): $(cat /tmp/vm.out)"
  echo "the VM holds /dev/vfio/$(group_of "$gpu"); it left $gpu with $(cat /tmp/vm.out)"
}
vm_stop() {
  kill "$VM" && wait "$VM" 2>/dev/null
  pt-vm-standin "$aud"
}
step 3 "a VM runs: it opened /dev/vfio/$(group_of "$gpu") and uses the GPU" vm_start
assert_out_has "command=0x0105"
step 4 "the VM stops (killed, no cleanup; then a VM uses the audio function)" vm_stop
say_more "vfio-pci's release put the header back (it resets the GPU and restores its config"
say_more "space); the device state a VM leaves inside a GPU is what the recovery's reset is for."

echo
note "step 5: recover. The recipe of pt(7) for this GPU ('pt recover --recipe' prints it):"
show 0 pt recover --recipe "$gpu"
say_more "'pt recover' runs it in one process and compares the state before and after:"
show 0 pt recover "$gpu"
for _s in reset attach drm-wait vgaarb console drm-check; do
  assert_out_has "recover $gpu: $_s exited 0 after"
done
assert_out_has "state changes:"
assert_attached
assert_eq "decodes of $gpu after the recovery" io+mem "$(arb_field "$gpu" decodes)"
tty1_on_gpu "$gpu" || fail "console after the recovery" "fbcon on a framebuffer of $gpu" "$(fbcon_state "$gpu")"

echo
note "the end: the state now against the boot snapshot"
show 0 pt diff boot.json
assert_out_has "no change"
say_more "the cycle left nothing behind: drivers, power, command registers, arbiter,"
say_more "console, DRM card and journal are as they were at boot."
pass demo-cycle

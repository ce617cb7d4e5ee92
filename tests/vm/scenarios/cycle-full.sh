# pt-vm: topology=console
# cycle-full.sh: issue 6's whole cycle on GPU+audio, on the machine where the
# GPU is the boot VGA and carries fbcon: pt-console release -> pt-bind detach
# -> the VM stand-in (pt-vm-standin) uses both functions through VFIO and
# leaves them dirty (bus mastering on, memory decode off, D3hot) -> the
# recovery recipe of pt(7): pt-reset --method bus, pt-bind attach, pt-drm
# wait, pt-vgaarb restore, pt-console restore, pt-drm check. Ends with both
# functions on their original drivers, in D0, their command registers as at
# boot, decodes io+mem, fbcon on the GPU's framebuffer, the journal empty and
# pt-drm check exiting 0. Also run on 5.10 and 6.12 (vm-matrix).
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
assert_eq "boot VGA" "$gpu" "$(boot_vga_device)"
tty1_on_gpu "$gpu" || fail "console at boot" "fbcon on $gpu's framebuffer" "$(fbcon_state "$gpu")"
wait_for "pt-drm check $gpu >/dev/null 2>&1" 20 || fail "pt-drm check at boot" 0 "$(pt-drm check "$gpu" 2>&1)"
boot=$(cycle_state)
say "at boot"
echo "$boot" | sed 's/^/   /'
echo "   $(fbcon_state "$gpu")"

t0=$(now_ns)
say "release the console, detach GPU+audio"
expect_rc 0 pt-console release "$gpu"
assert_vtcon_bind "frame buffer device" 0
expect_rc 0 pt-bind detach "$SLOT"
assert_detached

say "the VM stand-in uses both functions and exits without cleanup"
vm_dirty "$gpu"
vm_dirty "$AUD"
cycle_state | sed 's/^/   after the VM: /'

say "the recovery recipe"
t1=$(now_ns)
expect_rc 0 recipe "$gpu"
echo "   recipe: $(elapsed_ms "$t1") ms; whole cycle: $(elapsed_ms "$t0") ms"
cycle_state | sed 's/^/   /'
echo "   $(fbcon_state "$gpu")"
assert_cycle_healthy "$gpu" "$boot"
expect_json 0 pt-drm --json check "$gpu"
assert_json "verdict" '.verdict == "healthy"'
pass

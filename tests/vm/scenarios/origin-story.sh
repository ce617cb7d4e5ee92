# pt-vm: topology=doubles
# origin-story.sh: the admin log of issue 14 (seeds/000), replayed on the
# driver doubles. The host boots with the nvidia-like GPU double on 01:00.0
# and the snd_hda_intel-like double on 01:00.1; the GPU has no FLR, like a
# GeForce. First the admin's own cycle, without pt: detach by hand, a VM (the
# stand-in) uses the GPU and leaves it dirty, attach by hand. The failure
# signature, read from the doubles: decodes=none (with the kernel's
# "olddecodes=io+mem,decodes=none" line), the fan at full speed, the audio
# function unbound, the query ioctl (nvidia-smi) hanging. Then pt's cycle:
# pt-bind detach, the VM, and pt's recipe for a GPU without DRM (pt-reset
# --method bus, pt-bind attach, pt-vgaarb restore): every symptom is gone
# (decodes=none too: the journal holds nvidia's own none, which pt-vgaarb
# restore replaces with io+mem for the boot VGA).
# pt's display steps on a GPU without DRM: pt-drm wait times out (5), pt-drm
# check says no DRM device (1), pt-console restore has nothing to do (0).
# The VM uses the GPU only and is killed (no D3hot): a VM that also used the
# audio function makes vfio-pci reset the whole slot on release, and so does
# 5.10's vfio-pci for a function left in D3hot (tests/vm/README.md, "Driver
# doubles"). pt's cycle starts from a host booted again (doubles_setup): from
# the admin's broken state pt-bind detach would journal the audio function as
# unbound, and attach faithfully puts it back there.
. /pt-vm/lib.sh

doubles_setup
gpu=$(full_bdf "$GPU")
say "booted with the doubles"
boot=$(doubles_state)
echo "   $boot"
assert_eq "GPU dirty at boot" 0 "$(nv_dirty "$gpu")"
assert_eq "fan at boot" "pwm1=100 fan1=1290" "$(nv_fan "$gpu")"
assert_query_answers "$gpu"
assert_eq "decodes at boot (nv_pci_probe sets none)" none "$(arb_field "$gpu" decodes)"

say "the admin's cycle: gpu_ptd_w (driver_override vfio-pci, unbind, drivers_probe)"
rebind "$gpu" vfio-pci
rebind "$AUD" vfio-pci
assert_driver "$gpu" vfio-pci
assert_driver "$AUD" vfio-pci
echo "   on vfio-pci: decodes=$(arb_field "$gpu" decodes)"

say "the VM uses the GPU and leaves it dirty"
vm_uses "$gpu"
proof_value "$gpu"
echo "   after the VM: $gpu device_status=$PR_VALUE"
[ $((PR_VALUE)) -ne 0 ] || fail "device_status of $gpu after the VM released it" "0x03 (vfio-pci's release cannot reset a GPU without FLR)" "$PR_VALUE"

say "gpu_pta_w: back to nvidia and snd_hda_intel by hand"
dmesg -c >/dev/null
rebind "$gpu" "$NV_DRIVER"
rebind "$AUD" ""
after=$(doubles_state)
echo "   $after"
dmesg | sed 's/^/   dmesg: /'

say "the failure signature of the origin story"
assert_driver "$gpu" "$NV_DRIVER"
assert_eq "decodes after the admin's attach" none "$(arb_field "$gpu" decodes)"
assert_contains "kernel log of the attach" "olddecodes=io+mem,decodes=none" "$(dmesg | grep vgaarb)"
assert_eq "GPU dirty after the admin's cycle" 1 "$(nv_dirty "$gpu")"
assert_eq "fan after the admin's cycle" "pwm1=255 fan1=3300" "$(nv_fan "$gpu")"
assert_driver "$AUD" none
assert_contains "kernel log of the audio probe" "no codecs found" "$(dmesg | grep ptd_hda_intel)"
assert_query_hangs "$gpu"

say "pt's cycle, on a host booted again (doubles_setup: power-on state, the doubles bound)"
doubles_setup
assert_eq "state after the new boot" "${boot% hda_failed_probes=*}" "$(doubles_state | sed 's/ hda_failed_probes=.*//')"
refused=$(hda_failed_probes)
expect_rc 0 pt-bind detach "$SLOT"
assert_driver "$gpu" vfio-pci
assert_driver "$AUD" vfio-pci
assert_eq "journal: decodes pt-bind recorded (nvidia's own none)" none "$(journal_vga "$gpu" decodes)"
vm_uses "$gpu"

say "pt's recipe for a GPU without DRM: pt-reset --method bus, pt-bind attach, pt-vgaarb restore"
t1=$(now_ns)
expect_rc 0 pt-reset --method bus "$gpu"
expect_rc 0 pt-bind attach "$SLOT"
expect_rc 0 pt-vgaarb restore "$gpu"
assert_out_has "from the journal: decodes=none"
assert_out_has "the boot VGA gets io+mem"
echo "   recipe: $(elapsed_ms "$t1") ms"
doubles_state | sed 's/^/   /'

say "every symptom is gone, read from the doubles"
assert_driver "$gpu" "$NV_DRIVER"
assert_eq "GPU dirty after the recipe" 0 "$(nv_dirty "$gpu")"
assert_eq "fan after the recipe" "pwm1=100 fan1=1290" "$(nv_fan "$gpu")"
assert_driver "$AUD" "$HDA_DRIVER"
assert_eq "audio probes refused during pt's cycle" "$refused" "$(hda_failed_probes)"
assert_query_answers "$gpu"
assert_eq "decodes" io+mem "$(arb_field "$gpu" decodes)"
assert_eq "journal leftovers" "" "$(journal_leftovers)"

say "what the display steps of pt's recipe do on a GPU without a DRM device"
echo "   (the real nvidia has a DRM device only with nvidia-drm loaded; the double has none)"
expect_rc 5 timeout 20 pt-drm --timeout 3 wait "$gpu"
assert_out_has "no DRM card node appeared"
expect_rc 0 timeout 20 pt-console restore "$gpu"
expect_rc 1 timeout 20 pt-drm check "$gpu"
assert_out_has "registered no DRM card"
pass

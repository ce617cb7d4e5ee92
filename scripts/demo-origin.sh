# pt-vm: topology=doubles
# The quick-start demo, part 2, run inside the QEMU guest by scripts/demo (and
# as the VM test vm.demo-origin): the origin story of pt (pt(7)), replayed
# with pt on the driver doubles of tests/vm/doubles. The host boots with an
# nvidia-like driver on the GPU (no FLR, no DRM device, like a GeForce with
# the proprietary driver) and an snd_hda_intel-like driver on its audio. A VM
# leaves the GPU dirty; without pt the admin's host came back with the fan
# at full speed, nvidia-smi hanging and decodes=none in the VGA arbiter
# (tests/vm/scenarios/origin-story.sh replays that). Here `pt recover` runs
# the recovery pt.conf names for this GPU (bus reset, attach, arbiter) and
# every symptom is gone; the state at each step comes from the system log.
. /pt-vm/lib.sh
. /pt-vm/files/demo-lib.sh

gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")

note "part 2: the origin story, repaired by pt"
say_more "the host boots with the nvidia-like driver on $gpu and the audio driver on $aud"
doubles_setup
say_more "read from the driver doubles (the fan and 'dirty' are theirs, not pt's):"
say_more "  $(doubles_state)"
assert_eq "GPU dirty at boot" 0 "$(nv_dirty "$gpu")"
assert_eq "fan at boot" "pwm1=100 fan1=1290" "$(nv_fan "$gpu")"
assert_eq "decodes at boot" none "$(arb_field "$gpu" decodes)"
refused=$(hda_failed_probes)
say_more "decodes=none already: nvidia's probe sets it (nv_pci_probe, VGA_RSRC_NONE) at"
say_more "every bind, so this boot VGA device claims no legacy VGA ranges."

# No DRM device, so no DRM steps: the recovery is the bus reset (no FLR),
# the attach and the arbiter; pt.conf(5) gives it as the GPU's recover list.
mkdir -p /etc/pt
cat >/etc/pt/pt.conf <<CONF
[device.gpu]
bdf = "$gpu"
companions = ["$aud"]
recover = ["reset", "attach", "vgaarb"]

[device.gpu.step.reset]
method = "bus"
CONF
say_more "its recovery, in /etc/pt/pt.conf (pt.conf(5)):"
sed 's/^/            /' /etc/pt/pt.conf
snapshot_boot

step 1 "release the console (what a hypervisor hook runs first)" pt-console release "$gpu"
say_more "nothing to do here: the double has no framebuffer (the real nvidia has one only"
say_more "with nvidia-drm's fbdev)."
step 2 "detach GPU+audio to vfio-pci" pt-bind detach "$SLOT"
assert_detached
step 3 "a VM uses the GPU, leaves it dirty and is killed (like 'qm stop')" vm_uses "$gpu"
assert_out_has "dirty: device_status=0x03"
assert_eq "what pt sees after the VM" "no change" "$DIFF"
say_more "pt sees no change: the VM's leftovers are inside the GPU (virtio's device_status,"
say_more "which the stand-in wrote), where only a reset clears them. Attached without one, the"
say_more "nvidia driver finds a dirty GPU: fan at full speed, nvidia-smi hanging, the audio"
say_more "probe failing (tests/vm/scenarios/origin-story.sh replays that)."

echo
note "step 4: pt recover, logging the state at each step to syslog (busybox syslogd here)"
syslogd -n -O /tmp/messages &
syslogd_pid=$!
wait_for "[ -S /dev/log ]" 10 || fail "syslogd's /dev/log" "a socket" "$(ls -l /dev/log 2>&1)"
show 0 pt recover "$gpu"
for _s in reset attach vgaarb; do
  assert_out_has "recover $gpu: $_s exited 0 after"
done
assert_out_has "state changes:"
wait_for "grep -q 'state after vgaarb' /tmp/messages" 10 || true
kill "$syslogd_pid"
wait "$syslogd_pid" 2>/dev/null
say_more "what each step changed, as pt logged it (its driver and decodes changes; the"
say_more "whole lines are in the system log, 'journalctl -t pt' on a real host):"
grep "recover $gpu: state after" /tmp/messages | sed 's/.*recover [^ ]*: //' | awk -F'; ' '{
  sub(/: /, ":\n", $1)
  split($1, h, "\n")
  print "            " h[1]
  $1 = h[2]
  for (i = 1; i <= NF; i++)
    if ($i ~ /driver:|vga\.decodes|no change/) print "              " $i
}'
# The repair, step by step: nvidia's probe sets none again at the attach,
# the arbiter step puts io+mem back.
for _l in "state after attach (ok): .*$gpu vga.decodes: io+mem -> none" \
  "state after vgaarb (ok): .*$gpu vga.decodes: none -> io+mem"; do
  grep -q "$_l" /tmp/messages || fail "pt's line in the system log" "$_l" "$(grep 'state after' /tmp/messages)"
done

echo
note "every symptom is gone, read from the doubles:"
say_more "  $(doubles_state)"
assert_driver "$gpu" "$NV_DRIVER"
assert_driver "$aud" "$HDA_DRIVER"
assert_eq "audio probes refused during the cycle" "$refused" "$(hda_failed_probes)"
assert_eq "GPU dirty after pt recover" 0 "$(nv_dirty "$gpu")"
assert_eq "fan after pt recover" "pwm1=100 fan1=1290" "$(nv_fan "$gpu")"
assert_eq "decodes after pt recover" io+mem "$(arb_field "$gpu" decodes)"
assert_query_answers "$gpu"

echo
note "the end: the state now against the boot snapshot"
show 1 pt diff boot.json
assert_eq "the one difference from boot" "$gpu vga.decodes: none -> io+mem" "$OUT"
say_more "the one difference is the repair: nvidia's bind set decodes=none, at boot as after"
say_more "the attach; pt-vgaarb restore gives the boot VGA device io+mem, what the firmware"
say_more "gave it (pt-vgaarb(8), restore). Everything else is as it was at boot."
pass demo-origin

# reset-bus-slot.sh: a secondary bus reset of the GPU + audio slot. With
# both functions on vfio-pci, `--method bus 01:00` (or naming 01:00.0 only:
# 01:00.1 is its same-slot companion) resets the bus as one unit: exit 0,
# both functions reset, both back on vfio-pci. With 01:00.1 still on
# snd_hda_intel it is refused, naming 0000:01:00.1, and nothing happens.
. /pt-vm/lib.sh

assert_attached
bridge=$(parent_of "$GPU")
say "bridge $bridge; reset_method of $GPU: $(reset_method_of "$GPU")"

say "both functions on vfio-pci"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
rm_before=$(reset_method_of "$GPU")

say "--method bus on the slot"
mark_device "$GPU" "$AUD"
t0=$(now_ns)
expect_rc 0 pt-reset --method bus "$SLOT"
echo "   wall time $(elapsed_ms "$t0") ms"
assert_reset_row "$GPU" bus
assert_reset_row "$AUD" bus
assert_reset_cycle "$GPU" bus
assert_was_reset "$GPU" "$AUD"
assert_detached
assert_eq "reset_method of $GPU after the bus reset" "$rm_before" "$(reset_method_of "$GPU")"
# One unit: the bridge's Secondary Bus Reset was pulsed once.
pulses=0
while read -r reg len val; do
  [ -n "$reg" ] || continue
  if [ 62 -ge "$reg" ] && [ 62 -lt $((reg + len)) ] && [ $(((val >> (8 * (62 - reg))) & 0x40)) -ne 0 ]; then
    pulses=$((pulses + 1))
  fi
done <<EOT
$(cfg_writes "$bridge")
EOT
[ -z "$PT_TRACE" ] || assert_eq "Secondary Bus Reset pulses on $bridge" 1 "$pulses"

say "--method bus naming 01:00.0 only (01:00.1 is its same-slot companion), JSON"
mark_device "$GPU" "$AUD"
expect_json 0 pt-reset --json --method bus "$GPU"
assert_reset_json "$GPU" bus
assert_was_reset "$GPU" "$AUD"
assert_detached

say "01:00.1 back on snd_hda_intel, 01:00.0 on vfio-pci"
expect_rc 0 pt-bind attach "$SLOT"
assert_attached
to_vfio "$GPU"
assert_driver "$AUD" snd_hda_intel
mark_device "$GPU"
aud_ctl=$(ls /sys/bus/pci/devices/"$AUD"/sound 2>/dev/null | tr '\n' ' ')
expect_rc 1 pt-reset --method bus "$GPU"
assert_out_has "0000:01:00.1"
assert_driver "$GPU" vfio-pci
assert_driver "$AUD" snd_hda_intel
assert_kept_state "$GPU"
assert_no_cfg_writes "$bridge" "$AUD"
assert_eq "sound devices of $AUD" "$aud_ctl" "$(ls /sys/bus/pci/devices/"$AUD"/sound 2>/dev/null | tr '\n' ' ')"
say "the same naming the slot: refused, $AUD is on a host driver"
expect_rc 1 pt-reset --method bus "$SLOT"
assert_out_has "0000:01:00.1"
assert_kept_state "$GPU"
assert_no_cfg_writes "$bridge" "$AUD"
assert_driver "$AUD" snd_hda_intel

say "cleanup"
echo > "/sys/bus/pci/devices/$GPU/driver_override"
echo "$GPU" >/sys/bus/pci/drivers/vfio-pci/unbind
echo "$GPU" >/sys/bus/pci/drivers_probe
assert_attached
pass

# recover-udev.sh (vm-system): the GPU claimed at boot goes back to its host
# driver with pt-bind attach; udev sees the bind, the packaged 61-pt.rules ask
# pt-bind udev-match, and systemd starts pt-recover@0000:01:00.0, which runs
# pt.conf's recover steps. systemd's journal shows each step and a healthy
# pt-drm check.
. /pt-vm/lib.sh

unit=pt-recover@$(full_bdf "$GPU").service
assert_driver "$GPU" vfio-pci
say "udev's view of $GPU"
udevadm info -q property -p "/sys/bus/pci/devices/$(full_bdf "$GPU")" | grep '^PT_' ||
  fail "PT_ properties of $GPU" "PT_DEVICE, PT_BOOT, PT_RECOVER from pt-bind udev-match" "none"
assert_eq "$unit before the attach" inactive "$(systemctl is-active "$unit")"

say "pt-bind attach $SLOT"
expect_rc 0 pt-bind attach "$SLOT"
assert_driver "$GPU" virtio-pci
assert_driver "$AUD" snd_hda_intel

say "waiting for $unit"
# A unit that systemd started has an invocation ID; a oneshot is
# "activating" while its command runs.
wait_for "[ -n \"\$(systemctl show -p InvocationID --value $unit)\" ]" 120 ||
  fail "$unit" "started by udev" "$(systemctl status --no-pager "$unit" 2>&1)"
wait_for "! systemctl show -p ActiveState --value $unit | grep -qx activating" 180 ||
  fail "$unit" "finished" "$(systemctl status --no-pager "$unit" 2>&1)"
journalctl -b -u "$unit" --no-pager -o cat >/tmp/recover.log
cat /tmp/recover.log
assert_eq "result of $unit" success "$(systemctl show -p Result --value "$unit")"
for step in attach drm-wait vgaarb console drm-check; do
  grep -q "recover $(full_bdf "$GPU"): $step exited 0" /tmp/recover.log ||
    fail "step $step in the journal" "exited 0" "$(grep "$step" /tmp/recover.log)"
done
grep -q "recover $(full_bdf "$GPU"): done" /tmp/recover.log || fail "the recovery" "done" "$(tail -n 5 /tmp/recover.log)"
say "the state at each step in the journal (identifier pt-bind)"
gpu=$(full_bdf "$GPU")
journalctl -b -t pt-bind --no-pager -o cat | grep "recover $gpu: state" >/tmp/state.log || true
cat /tmp/state.log
grep -q "recover $gpu: state before: $gpu " /tmp/state.log ||
  fail "the state before in the journal" "a 'state before' record" "$(cat /tmp/state.log)"
for step in attach drm-wait vgaarb console drm-check; do
  grep -q "recover $gpu: state after $step (ok): " /tmp/state.log ||
    fail "the state after $step in the journal" "a record" "$(cat /tmp/state.log)"
done
say "the display after the recovery"
expect_rc 0 pt-drm check "$GPU"
pass

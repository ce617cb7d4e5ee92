# pt-vm: topology=solo
# reset-held.sh: a GPU on its host driver whose DRM node a process holds open
# is not reset (exit 1, the holder named, no config write reaches the device
# or its bridge, reset_method unchanged); with --force it is reset under the
# holder, and the device recovers through pt-bind afterwards.
. /pt-vm/lib.sh

need_solo 1
dev=$SOLO
assert_driver "$dev" virtio-pci
card=$(drm_card_of "$dev")
[ -c "$card" ] || fail "DRM card of $dev" "/dev/dri/cardN" "'$card'"
rm_before=$(reset_method_of "$dev")
bridge=$(parent_of "$dev")

say "a process holds $card"
hold_open "$card"
holder=$HOLDER
cfg_trace_start
for args in "" "--method flr" "--method bus" "--method rescan"; do
  # shellcheck disable=SC2086 # $args is a list of words
  expect_rc 1 timeout 30 pt-reset $args "$dev"
  assert_out_has "$holder"
  assert_out_has "$card"
  assert_driver "$dev" virtio-pci
  assert_eq "reset_method after a refused reset" "$rm_before" "$(reset_method_of "$dev")"
  assert_no_cfg_writes "$dev" "$bridge"
done
kill -0 "$holder" 2>/dev/null || fail "holder $holder" "still running" "gone"

say "the boot VGA device with its console bound is refused too"
vga=
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/boot_vga" 2>/dev/null)" = 1 ] && vga=$(basename "$d")
done
if [ -n "$vga" ] && grep -q 1 /sys/class/vtconsole/vtcon*/bind 2>/dev/null; then
  expect_rc 1 timeout 30 pt-reset "$vga"
  assert_out_has "$vga"
  assert_contains "output of '$LAST_CMD'" "boot vga" "$(printf '%s' "$OUT" | tr '[:upper:]' '[:lower:]')"
  assert_no_cfg_writes "$vga"
else
  echo "   no boot VGA device with a bound console here"
fi

say "pt-reset shares pt-bind's lock: held, it gives up with 75"
[ -d /run/pt ] || mkdir -m 0700 /run/pt
flock /run/pt/lock sleep 4 &
locker=$!
wait_for "! flock -n /run/pt/lock true" 5 || fail "external lock holder" "holding /run/pt/lock" "not holding it"
expect_rc 75 timeout 30 pt-reset --force --lock-timeout 1 --method flr "$dev"
assert_no_cfg_writes "$dev" "$bridge"
wait "$locker"

say "--dry-run with --force plans and changes nothing"
expect_rc 0 timeout 30 pt-reset --dry-run --force --method flr "$dev"
assert_no_cfg_writes "$dev" "$bridge"
assert_eq "reset_method after --dry-run" "$rm_before" "$(reset_method_of "$dev")"

say "--force: reset under the holder"
mark_t=$(now_ns)
expect_rc 0 timeout 30 pt-reset --force --method flr "$dev"
echo "   $(elapsed_ms "$mark_t") ms"
assert_reset_row "$dev" flr
assert_reset_cycle "$dev" flr
assert_driver "$dev" virtio-pci
assert_eq "reset_method after the forced reset" "$rm_before" "$(reset_method_of "$dev")"
kill -0 "$holder" 2>/dev/null || fail "holder $holder after the forced reset" "still running" "gone"
release

say "the device recovers: detach and attach"
expect_rc 0 timeout 60 pt-bind detach "$dev"
assert_driver "$dev" vfio-pci
expect_rc 0 timeout 60 pt-bind attach "$dev"
assert_driver "$dev" virtio-pci
[ -c "$(drm_card_of "$dev")" ] || fail "DRM card of $dev after attach" "/dev/dri/cardN" "none"
pass

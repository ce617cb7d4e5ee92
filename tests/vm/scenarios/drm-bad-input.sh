# drm-bad-input.sh: a non-display function, a malformed address, a missing
# device and an unknown connector get a clear error and change nothing.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)
card=$(basename "$(drm_card_of "$GPU")")
status_before=$(cat /sys/class/drm/"$card"-Virtual-1/status)
unchanged() {
  assert_snapshot "$1" "$before"
  assert_eq "Virtual-1 status after $1" "$status_before" "$(cat /sys/class/drm/"$card"-Virtual-1/status)"
}

say "the audio function is not a display device"
for cmd in check show probe wait; do
  expect_rc 1 pt-drm "$cmd" "$AUD"
  assert_out_has "not a display device"
  unchanged "$cmd $AUD"
done

say "malformed addresses"
expect_rc 2 pt-drm check zz:00.0
assert_out_has "'zz:00.0'"
expect_rc 2 pt-drm probe 1:2:3:4
assert_out_has "1:2:3:4"
unchanged "malformed"

say "a device that does not exist"
expect_rc 1 pt-drm check 05:00.0
assert_out_has "no such PCI device"

say "unknown connectors"
expect_rc 1 pt-drm show "$GPU" HDMI-A-9
assert_out_has "'HDMI-A-9'"
expect_rc 1 pt-drm -v probe "$GPU" --connector HDMI-A-9
assert_out_lacks "write /sys"
unchanged "unknown connector"

say "usage errors"
expect_rc 2 pt-drm
expect_rc 2 pt-drm check
expect_rc 2 pt-drm frob "$GPU"
unchanged "usage"
pass

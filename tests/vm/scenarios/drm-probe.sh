# drm-probe.sh: probe writes detect to each connector's status and reports
# the states; on virtio Virtual-1 stays connected.
. /pt-vm/lib.sh

card=$(basename "$(drm_card_of "$GPU")")
[ -n "$card" ] || fail "card of $GPU" "cardN" "none"
say "dry run writes nothing"
expect_rc 0 pt-drm --dry-run probe "$GPU"
assert_out_has "/sys/class/drm/$card-Virtual-1/status \"detect\""

say "probe"
expect_json 0 pt-drm -v --json probe "$GPU"
assert_contains "stderr of -v" "/sys/class/drm/$card-Virtual-1/status \"detect\"" "$ERR"
assert_json "Virtual-1 after detect" '[.[] | select(.connector == "Virtual-1")][0] | .after.status == "connected" and .before.status == "connected" and .after.modes > 0'
assert_eq "sysfs status after probe" connected "$(cat /sys/class/drm/"$card"-Virtual-1/status)"
expect_rc 0 pt-drm probe "$GPU" --connector Virtual-1
assert_out_has "Virtual-1"
assert_out_has "connected -> connected"
expect_rc 0 pt-drm check "$GPU"

say "an unknown connector is refused before any write"
expect_rc 1 pt-drm -v probe "$GPU" --connector HDMI-A-9
assert_out_has "'HDMI-A-9'"
assert_out_has "Virtual-1"
assert_out_lacks "write /sys"
pass

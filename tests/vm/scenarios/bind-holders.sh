# bind-holders.sh: an open device node blocks the move (exit 1, the holder's
# pid named, nothing changed) instead of hanging in the kernel.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)
card=$(drm_card_of "$GPU")
[ -c "$card" ] || fail "DRM card of $GPU" "/dev/dri/cardN" "'$card'"

say "a process holds $card"
hold_open "$card"
holder=$HOLDER
expect_rc 1 timeout 30 pt-bind detach "$SLOT"
assert_out_has "$holder"
assert_snapshot "detach refused for a held card" "$before"
assert_journal_clean
release

ctl=$(ls /dev/snd/controlC* 2>/dev/null | head -n1)
if [ -n "$ctl" ]; then
  say "a process holds $ctl of the audio function"
  hold_open "$ctl"
  holder=$HOLDER
  expect_rc 1 timeout 30 pt-bind detach "$SLOT"
  assert_out_has "$holder"
  assert_snapshot "detach refused for a held sound card" "$before"
  assert_journal_clean
  release
fi

say "no holders: detach works"
expect_rc 0 timeout 30 pt-bind detach "$SLOT"
assert_detached
detached=$(snapshot)
group=$(group_of "$GPU")

say "a process holds /dev/vfio/$group"
hold_open "/dev/vfio/$group"
holder=$HOLDER
expect_rc 1 timeout 30 pt-bind attach "$SLOT"
assert_out_has "$holder"
assert_snapshot "attach refused for a held vfio group" "$detached"
assert_detached
release

say "no holders: attach works"
expect_rc 0 timeout 30 pt-bind attach "$SLOT"
assert_attached

say "--force overrides a holder of the vfio group (an unused group fd does not block vfio-pci's unbind)"
expect_rc 0 timeout 30 pt-bind detach "$SLOT"
hold_open "/dev/vfio/$group"
holder=$HOLDER
expect_rc 0 timeout 30 pt-bind --timeout 5 attach "$SLOT" --force
assert_attached
release
pass

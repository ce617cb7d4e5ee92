# reset-rescan.sh: --method rescan removes a function and rescans its bus,
# and the function comes back as it was: on vfio-pci with driver_override
# vfio-pci (or on its host driver without one), in its IOMMU group, without
# the host driver binding it on the way; the other function of the slot is
# not touched unless named.
. /pt-vm/lib.sh

assert_attached
group=$(group_of "$GPU")

say "slot on vfio-pci"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached

say "rescan of $GPU alone"
mark_device "$GPU" "$AUD"
expect_rc_soft 0 pt-reset --method rescan "$GPU"
[ "$RC" != 0 ] || assert_reset_row "$GPU" rescan
assert_reenumerated "$GPU"
assert_driver "$GPU" vfio-pci
assert_override "$GPU" vfio-pci
assert_eq "IOMMU group of $GPU after the rescan (01:00.1 kept it alive)" "$group" "$(group_of "$GPU")"
assert_vfio_node "$GPU"
check_no_host_driver "$GPU"
say "$AUD was not named: untouched"
assert_driver "$AUD" vfio-pci
assert_override "$AUD" vfio-pci
assert_lacks "kernel log since the mark" "$AUD: [8086:293e] type 00" "$(dmesg | sed -n "/pt-vm: mark $PT_MARK /,\$p")"
assert_kept_state "$AUD"
assert_detached

say "rescan of the whole slot, JSON"
mark_device "$GPU" "$AUD"
expect_rc_soft 0 pt-reset --json --method rescan "$SLOT"
if [ "$RC" = 0 ]; then
  assert_reset_json "$GPU" rescan
  assert_reset_json "$AUD" rescan
fi
for d in "$GPU" "$AUD"; do
  assert_reenumerated "$d"
  check_no_host_driver "$d"
done
assert_detached
# With every member removed the kernel frees the group; the rescan makes a
# new one, possibly with another number (and /dev/vfio/N).
# Found again by a hot-add scan, 01:00.1 is put in a group before the scan
# marks it multifunction (QEMU sets the multifunction header bit on function
# 0 only), so it can land in a group of its own: reported, not asserted.
if [ "$(group_of "$GPU")" != "$(group_of "$AUD")" ]; then
  echo "   note: after the rescan $GPU is in IOMMU group $(group_of "$GPU") and $AUD in $(group_of "$AUD") (before: both in $group);" \
    "header types $(cfg_read "$GPU" 0x0e) and $(cfg_read "$AUD" 0x0e)"
elif [ "$(group_of "$GPU")" != "$group" ]; then
  echo "   note: the slot's IOMMU group is now $(group_of "$GPU") (was $group)"
fi

say "the slot still goes back to its host drivers"
expect_rc 0 pt-bind attach "$SLOT"
assert_attached

say "rescan of the slot on its host drivers (nothing holds them): back on them, no driver_override"
expect_rc_soft 0 pt-reset --method rescan "$SLOT"
if [ "$RC" = 0 ]; then
  assert_reset_row "$GPU" rescan
  assert_reset_row "$AUD" rescan
fi
assert_attached
[ -n "$(drm_card_of "$GPU")" ] || fail "DRM card of $GPU after the rescan" "/dev/dri/cardN" "none"
pass

# bind-cycle.sh: detach moves the whole slot to vfio-pci and attach brings
# both functions back to their own drivers; repeating either is a no-op.
. /pt-vm/lib.sh

say "start: $(snapshot | tr '\n' ' ')"
assert_attached

say "detach the slot"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
assert_override "$GPU" vfio-pci
assert_override "$AUD" vfio-pci
assert_eq "IOMMU group of $AUD" "$(group_of "$GPU")" "$(group_of "$AUD")"
[ -z "$(drm_card_of "$GPU")" ] || fail "DRM card of $GPU after detach" "gone" "$(drm_card_of "$GPU")"
if command -v jq >/dev/null; then
  for d in "$GPU:$GPU_DRIVER" "$AUD:$AUD_DRIVER"; do
    b=${d%:*} drv=${d##*:}
    assert_eq "journal: original driver of $b" "$drv" "$(jq -r --arg d "$b" '.devices[$d].driver' "$PT_JOURNAL")"
    assert_eq "journal: target of $b" vfio-pci "$(jq -r --arg d "$b" '.devices[$d].to' "$PT_JOURNAL")"
    assert_eq "journal: original driver_override of $b" null "$(jq -r --arg d "$b" '.devices[$d].driver_override' "$PT_JOURNAL")"
  done
  assert_eq "journal: job" null "$(jq -r '.job' "$PT_JOURNAL")"
fi

say "detach again: nothing to do"
journal_before=$(cat "$PT_JOURNAL")
expect_rc 0 pt-bind detach "$SLOT"
assert_out_has "already on vfio-pci"
assert_detached
assert_eq "journal after a no-op detach" "$journal_before" "$(cat "$PT_JOURNAL")"

say "attach the slot"
expect_rc 0 pt-bind attach "$SLOT"
assert_attached
assert_no_vfio_node "$GPU"
[ -n "$(drm_card_of "$GPU")" ] || fail "DRM card of $GPU after attach" "/dev/dri/cardN back" "none"

say "attach again: nothing to do"
expect_rc 0 pt-bind attach "$SLOT"
assert_out_has "already"
assert_attached

say "the same cycle with full addresses of both functions"
expect_rc 0 pt-bind detach "$GPU" "$AUD"
assert_detached
expect_rc 0 pt-bind attach "$GPU" "$AUD"
assert_attached

pass

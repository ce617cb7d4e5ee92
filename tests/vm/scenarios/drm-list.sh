# drm-list.sh: pt-drm list maps card0 and card1 to their PCI devices and
# drivers, and matches /sys/class/drm.
. /pt-vm/lib.sh

say "what /sys/class/drm says"
for c in /sys/class/drm/card[0-9]; do
  echo "   $(basename "$c") -> $(readlink "$c")"
done

expect_json 0 pt-drm --json list
for c in /sys/class/drm/card[0-9]; do
  name=$(basename "$c")
  # The nearest PCI function above the card (5.10 puts virtio's under virtioN).
  bdf=$(readlink -f "$c" | tr '/' '\n' | grep -E '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$' | tail -n1)
  drv=$(driver_of "$bdf")
  echo "   sysfs: $name on $bdf ($drv)"
  assert_json "$name in pt-drm list" \
    '[.[] | select(.card == $c)] | length == 1 and (.[0] | .pci == $b and .pci_driver == $d and .node == ("/dev/dri/" + $c) and .node_exists and .kms == true)' \
    --arg c "$name" --arg b "$bdf" --arg d "$drv"
  for k in "$c"/"$name"-*; do
    kn=${k##*/"$name"-}
    assert_json "connector $kn of $name" \
      '[.[] | select(.card == $c) | .connectors[] | select(.name == $k)] | length == 1 and .[0].status == $s' \
      --arg c "$name" --arg k "$kn" --arg s "$(cat "$k/status")"
  done
done
n_sys=$(ls -d /sys/class/drm/card[0-9] | wc -l)
assert_json "number of cards" 'length == ($n | tonumber)' --arg n "$n_sys"

say "the testbed's two GPUs"
gpu_card=$(basename "$(drm_card_of "$GPU")")
host_card=$(basename "$(drm_card_of 00:01.0)")
assert_json "virtio GPU" '[.[] | select(.pci == $b)][0] | .card == $c and .driver == "virtio_gpu" and .pci_driver == "virtio-pci" and (.render | startswith("/dev/dri/renderD"))' --arg b "$GPU" --arg c "$gpu_card"
assert_json "bochs host display" '[.[] | select(.pci == "0000:00:01.0")][0] | .card == $c and (.driver | test("bochs"))' --arg c "$host_card"

say "text output names both"
expect_rc 0 pt-drm list
assert_out_has "$GPU"
assert_out_has "0000:00:01.0"
assert_out_has virtio_gpu
pass

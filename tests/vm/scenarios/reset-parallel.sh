# pt-vm: topology=quad
# reset-parallel.sh: four GPUs, each alone on its bus and on vfio-pci, reset
# together by one pt-reset call: exit 0, a result for each, each reset
# proven. Prints the wall time of one reset and of the four together (a
# benchmark line, "BENCH:"; no timing is asserted).
. /pt-vm/lib.sh

need_solo 4
say "kernel $(uname -r); solo GPUs: $SOLOS"
# shellcheck disable=SC2086 # a list of addresses
expect_rc 0 pt-bind detach $SOLOS
for d in $SOLOS; do
  assert_driver "$d" vfio-pci
  assert_override "$d" vfio-pci
done
best=$(pt-reset --json methods "$SOLO" | jq -r '[.[0].methods[] | select(.available)][0].name')
say "best method: $best"

say "one GPU"
mark_device "$SOLO"
t0=$(now_ns)
expect_json 0 pt-reset --json "$SOLO"
one=$(elapsed_ms "$t0")
assert_reset_json "$SOLO" "$best"
assert_was_reset "$SOLO"
one_total=$(printf '%s' "$OUT" | jq -r '.[0].total_ms')

say "four GPUs, one call"
# shellcheck disable=SC2086
mark_device $SOLOS
t0=$(now_ns)
# shellcheck disable=SC2086
expect_json 0 pt-reset --json $SOLOS
four=$(elapsed_ms "$t0")
for d in $SOLOS; do
  assert_reset_json "$d" "$best"
  case $best in flr | pm | bus | slot) assert_reset_cycle "$d" "$best" ;; esac
done
# shellcheck disable=SC2086
assert_was_reset $SOLOS
for d in $SOLOS; do
  assert_driver "$d" vfio-pci
  assert_override "$d" vfio-pci
done
totals=$(printf '%s' "$OUT" | jq -r '[.[].total_ms | tostring] | join(" ")')
sum=$(printf '%s' "$OUT" | jq -r '[.[].total_ms] | add')

say "the same in text form"
# shellcheck disable=SC2086
mark_device $SOLOS
# shellcheck disable=SC2086
expect_rc 0 pt-reset $SOLOS
for d in $SOLOS; do assert_reset_row "$d" "$best"; done
# shellcheck disable=SC2086
assert_was_reset $SOLOS

echo "BENCH: kernel $(uname -r) ($PT_VM_ACCEL): $best reset of one GPU: wall ${one} ms (pt-reset total_ms $one_total);" \
  "four GPUs in one call: wall ${four} ms (per-device total_ms: $totals; sum $sum)"
# shellcheck disable=SC2086
expect_rc 0 pt-bind attach $SOLOS
pass

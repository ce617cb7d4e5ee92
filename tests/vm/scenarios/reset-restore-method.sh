# pt-vm: topology=solo
# reset-restore-method.sh: pt-reset selects its method by writing the
# kernel's reset_method, and puts the previous list back afterwards: after a
# successful reset, after a custom list, after an injected EIO on `reset`
# (the function then is not reset), after an injected EIO on selecting the
# method. On 01:00.0 the kernel's list names a method it no longer accepts
# (bus, probed before 01:00.1 was added): the old list cannot be written
# back, and the kernel's default list is the best restore there is.
. /pt-vm/lib.sh

kernel_has_reset_method || skip "kernel $(uname -r) has no reset_method attribute (it came in 5.15)"
[ -f /lib/pt-fault.so ] || fail "fault-injection shim" "/lib/pt-fault.so in the guest" "missing (build target pt-fault)"
need_solo 1
dev=$SOLO
rmf=/sys/bus/pci/devices/$dev/reset_method
expect_rc 0 pt-bind detach "$dev"
assert_driver "$dev" vfio-pci
default=$(cat "$rmf")
say "reset_method of $dev: $default"

restored() {
  assert_eq "reset_method of $dev after: $1" "$2" "$(cat "$rmf")"
}

say "a successful reset with each listed method"
for m in $default; do
  mark_device "$dev"
  expect_rc 0 pt-reset -v --method "$m" "$dev"
  case $OUT in
    *"$rmf \"$m\""*) ;;
    *) soft_fail "-v output of '$LAST_CMD'" "the write of \"$m\" to $rmf" "$OUT" ;;
  esac
  restored "--method $m" "$default"
  assert_reset_cycle "$dev" "$m"
done

say "injected EIO on the reset write: not reset, list restored"
mark_device "$dev"
expect_rc_in "1 3 4" env LD_PRELOAD=/lib/pt-fault.so PT_FAULT_VERBOSE=1 PT_FAULT="/reset=1:EIO" pt-reset --method flr "$dev"
# The shim names the file as /proc/self/fd resolves it (/sys/devices/...).
assert_out_has "pt-fault: failing write to /sys/devices/"
assert_out_has "$dev/reset"
assert_contains "output of '$LAST_CMD'" "input/output error" "$(printf '%s' "$OUT" | tr 'A-Z' 'a-z')"
restored "the injected EIO on reset" "$default"
assert_kept_state "$dev"
assert_no_cfg_writes "$(parent_of "$dev")"
assert_driver "$dev" vfio-pci
assert_override "$dev" vfio-pci

say "injected EIO on selecting the method: list unchanged; reset some other way, or not at all"
mark_device "$dev"
expect_rc_in "0 1 3 4" env LD_PRELOAD=/lib/pt-fault.so PT_FAULT_VERBOSE=1 PT_FAULT="/reset_method=bus:EIO@1" pt-reset --method bus "$dev"
assert_out_has "pt-fault: failing write to /sys/devices/"
restored "the injected EIO on reset_method" "$default"
if [ "$RC" = 0 ]; then
  echo "   pt-reset did the bus reset without the kernel"
  assert_reset_cycle "$dev" bus
  assert_was_reset "$dev"
else
  assert_kept_state "$dev"
fi

say "a custom list is restored as it was"
echo "pm flr" >"$rmf"
restored "writing 'pm flr'" "pm flr"
mark_device "$dev"
expect_rc 0 pt-reset --method flr "$dev"
restored "--method flr with 'pm flr' set" "pm flr"
assert_was_reset "$dev"
mark_device "$dev"
expect_json 0 pt-reset --json "$dev"
restored "the best method with 'pm flr' set" "pm flr"
mark_device "$dev"
expect_json 0 pt-reset --json --method bus "$dev"
restored "--method bus with 'pm flr' set" "pm flr"
assert_was_reset "$dev"
# The kernel accepts any method it supports in reset_method, listed or not.
via=$(printf '%s' "$OUT" | jq -r '.[0].via')
[ "$via" = kernel ] || soft_fail "how pt-reset did --method bus with reset_method 'pm flr' (the kernel supports bus and accepts 'bus')" "via kernel" "via $via"
mark_device "$dev"
expect_rc_in "1 3 4" env LD_PRELOAD=/lib/pt-fault.so PT_FAULT="/reset=1:EIO" pt-reset --method pm "$dev"
restored "the injected EIO with 'pm flr' set" "pm flr"
assert_kept_state "$dev"
echo default >"$rmf"
restored "writing 'default'" "$default"

say "01:00.0: its list names bus, which the kernel now refuses"
gpu_rm=$(reset_method_of "$GPU")
say "reset_method of $GPU: $gpu_rm"
expect_rc 0 pt-bind detach "$SLOT"
mark_device "$GPU"
expect_rc 0 pt-reset -v --method flr "$GPU"
assert_was_reset "$GPU"
after=$(reset_method_of "$GPU")
if [ "$after" = "$gpu_rm" ]; then
  echo "   restored as it was: $after"
else
  echo default >"/sys/bus/pci/devices/$GPU/reset_method"
  kdefault=$(reset_method_of "$GPU")
  assert_eq "reset_method of $GPU after the reset (its old list '$gpu_rm' cannot be written back; the kernel's default list is '$kdefault')" "$kdefault" "$after"
  echo "   restored to the kernel's default list: $after"
fi
pass

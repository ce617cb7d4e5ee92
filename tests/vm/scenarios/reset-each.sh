# pt-vm: topology=solo
# reset-each.sh: every reset method pt-reset offers for a GPU alone on its
# bus (flr, pm, bus, slot when available, rescan) really resets the function
# on vfio-pci: exit 0, a result line with every phase, the device back on
# vfio-pci with its driver_override, reset_method as it was, and the proofs
# of lib.sh (the marked register cleared; the reset visible in the config
# writes). Each method runs twice: text output, then --json.
. /pt-vm/lib.sh

need_solo 1
dev=$SOLO
say "kernel $(uname -r); solo GPU $dev behind $(parent_of "$dev"); reset_method: $(reset_method_of "$dev")"
expect_rc 0 pt-bind detach "$dev"
assert_driver "$dev" vfio-pci
assert_override "$dev" vfio-pci
rm_before=$(reset_method_of "$dev")

# avail: the methods pt-reset offers for $dev right now.
avail() {
  pt-reset --json methods "$dev" | jq -r '.[0].methods[] | select(.available) | .name' | tr '\n' ' '
}
expect_json 0 pt-reset --json methods "$dev"
idle=$(avail)
say "available for the idle function on vfio-pci: $idle"
for m in flr pm bus rescan; do
  case " $idle " in
    *" $m "*) ;;
    # vfio-pci parks an idle function in D3hot (5.10 by hand, 6.x through
    # runtime PM); a reset starts by waking it, as the kernel's own does.
    *) soft_fail "methods of the idle $dev on vfio-pci (power state $(cat "/sys/bus/pci/devices/$dev/power_state" 2>/dev/null || echo "PMCSR $(($(cfg_read "$dev" $(($(cap_offset "$dev" 1) + 4))) & 3))"))" "$m available" "$idle" ;;
  esac
done

# proven METHOD: what the proofs must show after METHOD.
proven() {
  case $1 in
    flr | bus | slot)
      assert_reset_cycle "$dev" "$1"
      assert_was_reset "$dev"
      ;;
    pm)
      assert_reset_cycle "$dev" pm
      proof_value "$dev"
      if [ $((PR_VALUE)) -eq 0 ]; then
        echo "   $dev was reset: its marked register reads $PR_VALUE"
      else
        # QEMU 7.2's virtio-pci does nothing on D3hot->D0 although it reports
        # NoSoftRst-; the D3hot->D0 cycle in the config writes is the proof.
        echo "   note: register $PR_ADDR still reads $PR_VALUE: this QEMU does not reset virtio-pci on D3hot->D0 (NoSoftRst- notwithstanding)"
      fi
      ;;
    rescan)
      assert_reenumerated "$dev"
      check_no_host_driver "$dev"
      proof_value "$dev"
      echo "   note: register $PR_ADDR reads $PR_VALUE after the rescan (a remove and rescan re-enumerates the function; it does not reset it)"
      ;;
  esac
}

after() {
  assert_driver "$dev" vfio-pci
  assert_override "$dev" vfio-pci
  assert_vfio_node "$dev"
  assert_eq "reset_method of $dev after --method $1" "$rm_before" "$(reset_method_of "$dev")"
  proven "$1"
}

# try_reset METHOD CMD...: run a reset that methods called available; a
# failure is recorded (soft) and the method's checks are skipped.
try_reset() {
  _m=$1
  shift
  expect_rc_in "0 1 2 3 4 5 75" "$@"
  [ "$RC" = 0 ] && return 0
  soft_fail "'$LAST_CMD' ($_m is available: $now)" "exit 0" "exit $RC: $(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-300)"
  return 1
}

for m in flr pm bus rescan slot; do
  mark_device "$dev"
  now=$(avail)
  case " $now " in
    *" $m "*) ;;
    *)
      case $m in
        slot) say "slot: not available here ($(pt-reset methods "$dev" | awk '$1 == "slot"' | sed 's/^ *//'))" ;;
        *) fail "methods of $dev, awake on vfio-pci" "$m available" "$now" ;;
      esac
      continue
      ;;
  esac
  say "$m"
  t0=$(now_ns)
  if try_reset "$m" pt-reset --method "$m" "$dev"; then
    echo "   wall time $(elapsed_ms "$t0") ms"
    assert_reset_row "$dev" "$m"
    after "$m"
  fi

  say "$m, --json"
  mark_device "$dev"
  if try_reset "$m" pt-reset --json --method "$m" "$dev"; then
    assert_reset_json "$dev" "$m"
    via=$(printf '%s' "$OUT" | jq -r '.[0].via')
    case " $rm_before " in
      *" $m "*) assert_eq "how $m was done (the kernel lists it: $rm_before)" kernel "$via" ;;
      *) echo "   via $via" ;;
    esac
    after "$m"
  fi
done

say "best method (no --method)"
mark_device "$dev"
first=$(avail | awk '{print $1}')
expect_json 0 pt-reset --json "$dev"
best=$(printf '%s' "$OUT" | jq -r '.[0].method')
assert_eq "method chosen without --method" "$first" "$best"
assert_reset_json "$dev" "$best"
after "$best"

say "back to the host driver"
expect_rc 0 pt-bind attach "$dev"
assert_driver "$dev" virtio-pci
assert_override "$dev" "(null)"
pass

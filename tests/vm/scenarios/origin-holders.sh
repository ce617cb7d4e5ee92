# pt-vm: topology=doubles
# origin-holders.sh: pt-bind detach while a process holds /dev/nvidia0 of the
# nvidia-like double (nvidia-smi, a CUDA program, Xorg). Without --force it is
# refused (exit 1) with the holder's pid and name, found through pt's nvidia
# path (/proc/driver/nvidia/gpus/BDF/information, "Device Minor:"), and
# nothing changes. With --force the unbind blocks in the double's
# nv_pci_remove(), which waits uninterruptibly like nvidia's ("Attempting to
# remove device ... with non-zero usage count!"): pt gives up after
# --timeout with exit 5 (without blocking on the locked device itself),
# naming the kernel's wait channel and the writer's pid, and the writer keeps
# none of pt's descriptors; every pt-bind run while the writer is stuck exits
# 5 at once naming it; once the holder exits the unbind completes, the next
# pt-bind detach takes the interrupted job over, and attach brings both
# functions back to the doubles.
. /pt-vm/lib.sh

doubles_setup
gpu=$(full_bdf "$GPU")
node=$(nv_node "$gpu")
assert_eq "node of the nvidia double" /dev/nvidia0 "$node"
before=$(snapshot)

say "a process holds $node"
hold_open "$node"
holder=$HOLDER
assert_eq "usage count of the double" 1 "$(cat "/sys/bus/pci/devices/$gpu/ptd_usage")"
expect_rc 1 timeout 30 pt-bind detach "$SLOT"
assert_out_has "$holder"
assert_out_has "sleep"
assert_out_has "$node"
assert_snapshot "detach refused for a held /dev/nvidia0" "$before"
assert_journal_clean

say "--force: the unbind blocks in nv_pci_remove until the holder lets go"
# A watchdog lets go of the holder should pt-bind block past its --timeout,
# so the guest still finishes and the failure is reported.
(sleep 40; kill "$holder" 2>/dev/null) &
watchdog=$!
t0=$(now_ns)
# Output to a file, not $(...): a writer that kept pt-bind's stdout would
# hold the pipe open for as long as it is stuck (it must not; checked below).
timeout 60 pt-bind --timeout 3 detach "$SLOT" --force >/tmp/force.out 2>&1
RC=$? OUT=$(cat /tmp/force.out) LAST_CMD="pt-bind --timeout 3 detach $SLOT --force"
ms=$(elapsed_ms "$t0")
ms=${ms%.*}
echo "\$ $LAST_CMD  -> exit $RC after $ms ms"
sed 's/^/  | /' /tmp/force.out
[ "$RC" = 5 ] || fail "exit status of '$LAST_CMD'" 5 "$RC"
[ "$ms" -lt 20000 ] || fail "pt-bind's time with --timeout 3" "under 20 s (it must not block on the stuck device)" "$ms ms"
assert_out_has "did not return within 3 s"
writer=$(printf '%s\n' "$OUT" | sed -n 's/.*writer pid \([0-9][0-9]*\).*/\1/p' | head -n1)
[ -n "$writer" ] || fail "writer pid in pt-bind's message" "a pid" "$OUT"
[ -e "/proc/$writer" ] || fail "writer $writer" "still blocked in the kernel" "gone"
wchan=$(cat "/proc/$writer/wchan")
# 5.10's /proc/PID/wchan reads 0 for a task asleep in the kernel; pt then
# names the first frame of /proc/PID/stack past the scheduler.
case $wchan in
  '' | 0) wchan=$(sed -n 's/^\[<[^]]*>\] \([^+]*\)+.*/\1/p' "/proc/$writer/stack" | grep -v schedule | head -n1) ;;
esac
[ -n "$wchan" ] || wchan=unknown
echo "   writer $writer: $(sed -n 's/^State:[[:space:]]*//p' "/proc/$writer/status"), wchan $wchan"
assert_out_has "waiting in $wchan"
assert_out_has "driver_override not read"
for fd in 0 1; do
  assert_eq "fd $fd of the stuck writer" /dev/null "$(readlink "/proc/$writer/fd/$fd")"
done
# Its stderr is pt-bind's relay pipe, whose reader has exited: no stream of
# this shell's.
case $(readlink "/proc/$writer/fd/2") in
  pipe:*) ;;
  *) fail "fd 2 of the stuck writer" "pt-bind's relay pipe" "$(readlink "/proc/$writer/fd/2")" ;;
esac
assert_contains "kernel log" "with non-zero usage count" "$(dmesg | grep NVRM)"
# The kernel removes the driver link before it calls remove(), so sysfs
# shows no driver while nv_pci_remove waits. (driver_of reads that link;
# override_of, driver_override, would block on the device lock here.)
assert_eq "driver link of $gpu while its remove() waits" none "$(driver_of "$gpu")"
assert_out_has "$gpu: driver=none (driver_override not read"
assert_eq "journal: the stuck writer" "$writer" "$(jq -r '.job.stuck_write.writer' "$PT_JOURNAL")"
jq -c .job "$PT_JOURNAL" | sed 's/^/   journal job: /'

say "the next run reports the stuck job instead of blocking"
for cmd in "detach $SLOT" "attach $SLOT" "--dry-run attach $SLOT"; do
  t0=$(now_ns)
  # shellcheck disable=SC2086 # words of the command
  expect_rc 5 timeout 30 pt-bind $cmd
  ms=$(elapsed_ms "$t0")
  [ "${ms%.*}" -lt 10000 ] || fail "time of pt-bind $cmd" "under 10 s" "$ms ms"
  assert_out_has "still blocked in the kernel"
  assert_out_has "writer pid $writer"
  assert_out_has "waiting in $wchan"
  assert_out_has "/sys/bus/pci/drivers/nvidia/unbind"
done

say "the holder exits: nv_pci_remove returns, the stuck unbind completes"
kill "$watchdog" 2>/dev/null
release
wait_for "[ ! -e /proc/$writer ]" 10 || fail "writer $writer after the holder exited" "gone (its unbind completed)" "$(cat "/proc/$writer/wchan")"
assert_eq "driver of $gpu after the holder exited" none "$(driver_of "$gpu")"
assert_eq "usage count gone with the double's device" "" "$(cat "/sys/bus/pci/devices/$gpu/ptd_usage" 2>/dev/null)"
expect_rc 0 timeout 60 pt-bind detach "$SLOT"
assert_out_has "interrupted detach"
assert_driver "$gpu" vfio-pci
assert_driver "$AUD" vfio-pci
expect_rc 0 timeout 60 pt-bind attach "$SLOT"
assert_driver "$gpu" "$NV_DRIVER"
assert_driver "$AUD" "$HDA_DRIVER"
assert_override "$gpu" "$NV_DRIVER"
assert_journal_clean
pass

# pt-vm: topology=doubles
# bind-stuck-journal.sh: a detach whose unbind blocks in the nvidia double's
# nv_pci_remove() (a process holds /dev/nvidia0), run as the hooks run it,
# out=$(pt-bind ...): the capture returns with exit 5 as soon as pt-bind
# gives up, although its writer stays in the kernel; the writer holds no
# copy of the pt lock, so the next pt-bind takes the lock at once. While the
# writer is stuck, attach refuses (exit 5) and the journal keeps the job and
# the original drivers. Once the holder exits and the unbind completes,
# attach (without a detach first) restores the original drivers, and only
# then is the journal cleared.
. /pt-vm/lib.sh

doubles_setup
gpu=$(full_bdf "$GPU")
node=$(nv_node "$gpu")
hold_open "$node"
holder=$HOLDER
# Lets go of the holder should pt-bind block, so the guest still finishes.
(sleep 60; kill "$holder" 2>/dev/null) &
watchdog=$!

say "out=\$(pt-bind --timeout 2 detach ...) returns while the writer is stuck"
t0=$(now_ns)
out=$(timeout 50 pt-bind --timeout 2 detach --force "$SLOT" 2>&1)
rc=$?
ms=$(elapsed_ms "$t0")
printf '%s\n' "$out" | sed 's/^/  | /'
assert_eq "exit status of the stuck detach" 5 "$rc"
[ "${ms%.*}" -lt 15000 ] || fail "time of out=\$(pt-bind --timeout 2 detach)" "under 15 s" "$ms ms"
assert_contains "output of the stuck detach" "did not return within 2 s" "$out"
writer=$(jq -r '.job.stuck_write.writer' "$PT_JOURNAL")
[ -e "/proc/$writer" ] || fail "writer $writer after pt-bind exited" "still in the kernel" "gone"
for fd in /proc/"$writer"/fd/*; do
  case $(readlink "$fd") in
    */run/pt/lock) fail "descriptors of the stuck writer" "no copy of /run/pt/lock" "$fd" ;;
  esac
done
flock -n /run/pt/lock true || fail "flock -n /run/pt/lock while the writer is stuck" "free" "held"

say "attach refuses while the unbind is stuck, and keeps the journal"
journal_before=$(cat "$PT_JOURNAL")
expect_rc 5 timeout 30 pt-bind --lock-timeout 0 attach "$SLOT"
assert_out_lacks "another pt command holds the lock"
assert_out_has "writer pid $writer"
assert_out_has "still blocked in the kernel"
assert_eq "journal after the refused attach" "$journal_before" "$(cat "$PT_JOURNAL")"
assert_eq "journal: original driver of $gpu" "$NV_DRIVER" \
  "$(jq -r --arg d "$gpu" '.devices[$d].driver' "$PT_JOURNAL")"
assert_eq "journal: the job" detach "$(jq -r '.job.op' "$PT_JOURNAL")"

say "the holder exits: the unbind completes, attach restores the original drivers"
kill "$watchdog" 2>/dev/null
release
wait_for "[ ! -e /proc/$writer ]" 10 || fail "writer $writer after the holder exited" "gone" "still there"
assert_eq "driver of $gpu after the unbind completed" none "$(driver_of "$gpu")"
expect_rc 0 timeout 60 pt-bind attach "$SLOT"
assert_out_has "interrupted detach"
assert_driver "$gpu" "$NV_DRIVER"
assert_driver "$AUD" "$HDA_DRIVER"
assert_journal_clean
pass

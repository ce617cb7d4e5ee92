# pt-vm: topology=solo
# bind-vanished.sh: pt-bind detach of the GPU slot killed with SIGKILL after
# its 4th write (the audio function on vfio-pci, the GPU's override set)
# leaves an interrupted job; then the audio function is removed through its
# sysfs remove attribute. A mutating command on another device (the solo GPU)
# still works: its dry run and the real run both say the removed function
# has nothing to undo, the GPU of the job is undone, the removed function's
# journal entry is dropped, and the solo GPU moves. After a rescan the audio
# function is back on its host driver.
. /pt-vm/lib.sh

need_solo 1
SOLO=$(full_bdf "$SOLO")
aud=$(full_bdf "$AUD")
solo_driver=$(driver_of "$SOLO")
assert_attached

say "kill -9 pt-bind detach $SLOT after its 4th write"
# Its stderr is a FIFO read line by line, so it cannot run ahead of the kill
# (as in bind-sigkill.sh).
rm -f /tmp/fifo /tmp/v.err
mkfifo /tmp/fifo
pt-bind -v detach "$SLOT" 2>/tmp/fifo >/tmp/v.out &
pid=$!
writes=0
while IFS= read -r line; do
  echo "$line" >>/tmp/v.err
  case $line in
    "pt-bind: write "*)
      writes=$((writes + 1))
      [ "$writes" -ge 4 ] && kill -9 "$pid" 2>/dev/null && break
      ;;
  esac
done </tmp/fifo
wait "$pid" 2>/dev/null
sed 's/^/  ~ /' /tmp/v.err
jq -c .job "$PT_JOURNAL" | sed 's/^/   journal job: /'
[ "$(jq -r .job.op "$PT_JOURNAL")" = detach ] || fail "journal job after the kill" "detach" "$(jq -c .job "$PT_JOURNAL")"

say "remove $aud through sysfs"
echo 1 >"/sys/bus/pci/devices/$aud/remove"
wait_for "[ ! -e /sys/bus/pci/devices/$aud ]" 10 || fail "$aud after remove" "gone" "still there"

say "the dry run and the real run on $SOLO both get past the vanished function"
expect_rc 0 timeout 60 pt-bind --dry-run detach "$SOLO"
assert_out_has "$aud of an interrupted detach"
assert_out_has "is gone (removed or unplugged): nothing to undo for it"
expect_rc 0 timeout 60 pt-bind detach "$SOLO"
assert_out_has "$aud of an interrupted detach"
assert_out_has "is gone (removed or unplugged): nothing to undo for it"
assert_out_has "undid an interrupted detach"
assert_out_lacks "no such PCI device"
assert_driver "$SOLO" vfio-pci
assert_driver "$GPU" "$GPU_DRIVER"
assert_override "$GPU" "(null)"
assert_eq "journal job" null "$(jq -c .job "$PT_JOURNAL")"
assert_eq "journal entry of the removed $aud" null "$(jq -c --arg d "$aud" '.devices[$d]' "$PT_JOURNAL")"
assert_journal_has "$SOLO"
expect_rc 0 timeout 60 pt-bind attach "$SOLO"
assert_driver "$SOLO" "$solo_driver"

say "rescan: $aud comes back on its host driver"
echo 1 >/sys/bus/pci/rescan
wait_for "[ \"\$(driver_of $aud)\" = \"$AUD_DRIVER\" ]" 20 || fail "driver of $aud after the rescan" "$AUD_DRIVER" "$(driver_of "$aud")"
assert_attached
pass

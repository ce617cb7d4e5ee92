# bind-journal-fault.sh: an attach whose every move succeeds but whose last
# journal save fails (pt-fault.so fails the write of the journal that has no
# entries left, EIO) says so: exit 4, not 1 ("nothing changed"), the message
# says the functions moved but the journal could not record it, with the
# state of each. The journal on disk still holds the job and the entries; the
# next attach finishes and clears it.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
assert_attached
expect_rc 0 timeout 60 pt-bind detach "$SLOT"
assert_detached

say "attach with the final journal save failing"
empty=$(printf '{\n  "devices": {}')
expect_rc 4 timeout 60 env LD_PRELOAD=/lib/pt-fault.so PT_FAULT_VERBOSE=1 \
  PT_FAULT="journal.json.tmp=$empty:EIO" pt-bind attach "$SLOT"
assert_out_has "was moved, but the journal could not record it"
assert_out_has "cannot write the journal"
assert_out_has "$gpu: driver=$GPU_DRIVER"
assert_driver "$GPU" "$GPU_DRIVER"
assert_driver "$AUD" "$AUD_DRIVER"
assert_eq "journal job after the failed save" attach "$(jq -r .job.op "$PT_JOURNAL")"
assert_journal_has "$GPU"
ls /run/pt | grep -q 'journal.json.tmp$' && fail "temporary journal files" "none left" "$(ls /run/pt)"

say "the next attach finishes the job"
expect_rc 0 timeout 60 pt-bind attach "$SLOT"
assert_out_has "interrupted attach"
assert_attached
pass

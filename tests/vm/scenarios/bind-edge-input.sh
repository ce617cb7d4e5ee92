# bind-edge-input.sh: input at the edges against the real kernel (issue 18):
# an empty --root, durations that are no number of seconds, a holder whose
# name is not UTF-8 and carries an escape sequence, a verdict lost to
# /dev/full, and a shared lock handed in through PT_LOCK_FD.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)
ESC=$(printf '\033')

unchanged() {
  assert_snapshot "$1" "$before"
  assert_journal_clean
}

say "--root '' is a usage error for every tool, also over PT_ROOT"
for tool in pt-bind pt-reset pt-vgaarb pt-console pt-drm; do
  case $tool in
    pt-bind) args="detach $SLOT" ;;
    pt-reset) args="$GPU" ;;
    pt-vgaarb) args="list" ;;
    pt-console) args="release $GPU" ;;
    pt-drm) args="check $GPU" ;;
  esac
  # shellcheck disable=SC2086 # ARGS is words
  expect_rc 2 "$tool" --root "" $args
  assert_out_has "--root"
  assert_out_has "DIR is empty"
  export PT_ROOT=/tmp
  # shellcheck disable=SC2086
  expect_rc 2 "$tool" --root "" $args
  assert_out_has "DIR is empty"
  unset PT_ROOT
  unchanged "$tool --root ''"
done

say "--timeout and --lock-timeout: finite seconds up to a day"
for bad in nan inf -1 1e300 9.3e15 0; do
  expect_rc 2 pt-bind --timeout "$bad" detach "$SLOT"
  assert_out_has "--timeout"
  unchanged "--timeout $bad"
done
for bad in nan inf -1 1e300 9.3e15; do
  expect_rc 2 pt-reset --lock-timeout "$bad" "$GPU"
  assert_out_has "--lock-timeout"
  unchanged "--lock-timeout $bad"
done
expect_rc 2 pt-bind --timeout 1e300 detach "$SLOT"
assert_out_has "'1e+300' is out of range"

card=$(drm_card_of "$GPU")
[ -c "$card" ] || fail "DRM card of $GPU" "/dev/dri/cardN" "'$card'"
say "a process named \\377\\376 ESC[31mevil holds $card"
# The subshell names itself (any user may) and keeps the card open; its
# sleeps hold it too, under their own name.
(
  printf '\377\376\033[31mevil' >/proc/self/comm
  exec 3<"$card"
  while :; do sleep 1; done
) &
HOLDER=$!
wait_for "[ \"\$(readlink /proc/$HOLDER/fd/3)\" = \"$card\" ]" 5 ||
  fail "process holding $card" "running with $card open" "$(ls -l /proc/$HOLDER/fd 2>&1)"
expect_json 0 pt-bind --json show "$GPU"
assert_json "the holder's name, its bytes that are not UTF-8 replaced" \
  'any(.holders[]; .pid == $p and .command == "\ufffd\ufffd\u001b[31mevil")' --argjson p "$HOLDER"
assert_lacks "stdout of '$LAST_CMD'" "$ESC" "$OUT"
expect_rc 0 pt-bind show "$GPU"
assert_out_has "pid $HOLDER ("
assert_out_has '\x1b[31mevil)'
assert_out_lacks "$ESC"
expect_rc 1 timeout 30 pt-bind detach "$SLOT"
assert_out_has "pid $HOLDER ("
assert_out_lacks "$ESC"
unchanged "detach refused for the held card"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
sleep 2  # its last sleep(1) lets go of the card

say "a verdict that cannot be written is named on stderr"
expect_rc_in "0 1 6" sh -c "pt-drm check $GPU >/dev/full"
assert_out_has "cannot write standard output"

if command -v flock >/dev/null 2>&1; then
  say "PT_LOCK_FD naming a shared lock is refused, and stays shared"
  mkdir -p -m 0700 /run/pt
  exec 8>>/run/pt/lock
  flock -s 8
  export PT_LOCK_FD=8
  expect_rc 1 pt-bind detach "$SLOT"
  assert_out_has "shared lock"
  unset PT_LOCK_FD
  flock -n -s /run/pt/lock true || fail "the caller's lock" "still shared" "not shared"
  flock -n -x /run/pt/lock true && fail "the caller's lock" "still held" "free"
  exec 8>&-
  unchanged "PT_LOCK_FD with a shared lock"
fi

say "after all that, detach and attach still work"
expect_rc 0 timeout 60 pt-bind detach "$SLOT"
assert_detached
expect_rc 0 timeout 60 pt-bind attach "$SLOT"
assert_attached
pass

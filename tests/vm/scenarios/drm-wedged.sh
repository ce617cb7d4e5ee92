# drm-wedged.sh: a card whose open(2) blocks in the kernel stops no pt-drm
# read past --timeout. The hang is injected: a FIFO bind-mounted over the
# card's node, so opening it waits in the kernel (fifo_open, for a writer
# that never comes) as an open or ioctl of a wedged GPU waits in its driver.
# check, show, list and wait each exit 5 within the timeout and name the
# node, the abandoned reader's pid and its wchan; without the FIFO the card
# is healthy again.
. /pt-vm/lib.sh

assert_attached
card=$(drm_card_of "$GPU")
[ -c "$card" ] || fail "DRM card of $GPU" "/dev/dri/cardN" "'$card'"
expect_rc 0 pt-drm check "$GPU"

say "wedge $card: a FIFO over its node"
mkfifo /tmp/wedge
mount --bind /tmp/wedge "$card" || fail "bind-mount a FIFO over $card" "mounted" "failed"
[ -p "$card" ] || fail "$card" "a FIFO now" "$(ls -l "$card")"

# expect_bounded CMD...: exit 5 after 3 s, naming the node, a reader pid
# and where the kernel holds it. The upper bound leaves room for a TCG guest
# on a loaded host (starting pt-drm and forking its readers took 2.5 s
# there); a hang would run into the 60 s of timeout(1).
expect_bounded() {
  _t0=$(now_ns)
  expect_rc 5 timeout 60 "$@"
  _ms=$(elapsed_ms "$_t0")
  awk -v m="$_ms" 'BEGIN{exit !(m >= 2900 && m < 9000)}' ||
    fail "time '$*' took" "3000 ms (+6000 at most)" "$_ms ms"
  assert_out_has "$card: "
  assert_out_has "did not return within --timeout (3 s for all of the command's reads"
  _pid=$(printf '%s\n' "$OUT" | sed -n 's/.*reader process, pid \([0-9]*\), waits.*/\1/p' | head -n1)
  [ -n "$_pid" ] || fail "reader pid in the message" "pid N" "$OUT"
  # wchan, or on kernels before 5.16 (wchan 0) the first frame of the stack
  _wchan=$(printf '%s\n' "$OUT" | sed -n 's/.*waits in the kernel in \([^ ]*\) (\/proc\/[0-9]*\/\(wchan\|stack\)).*/\1/p' | head -n1)
  say "reader pid $_pid waited in '$_wchan'"
  [ -n "$_wchan" ] && [ "$_wchan" != unknown ] || fail "wchan in the message" "a kernel function" "'$_wchan'"
  # SIGKILLed: the FIFO's wait is interruptible, so it is gone at once.
  wait_for "[ ! -d /proc/$_pid ] || grep -q '^State:.*Z' /proc/$_pid/status" 5 ||
    fail "reader $_pid after the timeout" "gone" "$(cat /proc/"$_pid"/status 2>&1 | head -n 3)"
}

say "check"
expect_bounded pt-drm --timeout 3 check "$GPU"
assert_out_has "reading its KMS state"
say "show"
expect_bounded pt-drm --timeout 3 show "$GPU"
say "list (the other card is read, this one times out)"
expect_bounded pt-drm --timeout 3 list
say "wait"
expect_bounded pt-drm --timeout 3 wait "$GPU"
assert_out_has "no ready DRM card within 3 s"
assert_out_has "reading its KMS resources"
say "--json check: the error, no verdict"
expect_bounded pt-drm --json --timeout 3 check "$GPU"

say "unwedged: healthy again"
umount "$card" || fail "umount $card" "the FIFO gone" "failed"
[ -c "$card" ] || fail "$card" "the card node again" "$(ls -l "$card")"
expect_rc 0 pt-drm --timeout 3 check "$GPU"
expect_rc 0 pt-drm --timeout 3 wait "$GPU"
pass

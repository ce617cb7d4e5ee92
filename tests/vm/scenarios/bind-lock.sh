# bind-lock.sh: pt-bind serialises on flock(/run/pt/lock): a held lock makes
# it wait up to --lock-timeout and then give up with 75; concurrent runs
# serialise and leave a consistent state.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)
[ -d /run/pt ] || mkdir -m 0700 /run/pt

say "the lock is held for 3 s"
flock /run/pt/lock sleep 3 &
holder=$!
wait_for "! flock -n /run/pt/lock true" 5 || fail "external lock holder" "holding /run/pt/lock" "not holding it"
t0=$(date +%s)
expect_rc 75 pt-bind --lock-timeout 1 detach "$SLOT"
assert_snapshot "after the lock timed out" "$before"
assert_journal_clean
expect_rc 0 pt-bind --lock-timeout 10 detach "$SLOT"
t1=$(date +%s)
assert_detached
wait "$holder"
say "waited for the lock: $((t1 - t0)) s since the first attempt"
[ $((t1 - t0)) -ge 2 ] || fail "time the detach waited for the lock" "about 3 s" "$((t1 - t0)) s"

expect_rc 0 pt-bind attach "$SLOT"
assert_attached

for round in 1 2 3; do
  say "round $round: detach and attach started together"
  pt-bind detach "$SLOT" >/tmp/d.out 2>&1 &
  p1=$!
  pt-bind attach "$SLOT" >/tmp/a.out 2>&1 &
  p2=$!
  if wait "$p1"; then r1=0; else r1=$?; fi
  if wait "$p2"; then r2=0; else r2=$?; fi
  sed 's/^/  detach| /' /tmp/d.out
  sed 's/^/  attach| /' /tmp/a.out
  assert_eq "exit status of the concurrent detach" 0 "$r1"
  assert_eq "exit status of the concurrent attach" 0 "$r2"
  if [ "$(driver_of "$GPU")" = vfio-pci ]; then
    say "detach ran last: $(snapshot | tr '\n' ' ')"
    assert_detached
    expect_rc 0 pt-bind attach "$SLOT"
  else
    say "attach ran last: $(snapshot | tr '\n' ' ')"
  fi
  assert_attached
done
pass

# bind-sigkill.sh: pt-bind killed with SIGKILL after its k-th sysfs write
# leaves a journal from which the next detach (or attach) finishes the job.
. /pt-vm/lib.sh

# kill_after K CMD...: start CMD -v in the background and SIGKILL it as soon
# as it has reported K completed writes on stderr. Sets WRITES.
kill_after() {
  _k=$1
  shift
  rm -f /tmp/fifo /tmp/v.err
  mkfifo /tmp/fifo
  "$@" 2>/tmp/fifo >/tmp/v.out &
  _pid=$!
  WRITES=0
  while IFS= read -r _line; do
    echo "$_line" >>/tmp/v.err
    case $_line in
      "pt-bind: write "*)
        WRITES=$((WRITES + 1))
        if [ "$WRITES" -ge "$_k" ]; then
          kill -9 "$_pid" 2>/dev/null
          break
        fi
        ;;
    esac
  done </tmp/fifo
  wait "$_pid" 2>/dev/null
  _rc=$?
  sed 's/^/  ~ /' /tmp/v.err
  if [ "$_rc" = 137 ]; then
    say "killed after write $WRITES: $(snapshot | tr '\n' ' ')"
  else
    say "finished (exit $_rc) before the kill after $WRITES writes: $(snapshot | tr '\n' ' ')"
  fi
  rm -f /tmp/fifo
}

assert_attached
for k in 1 2 3 4 5 6; do
  say "round $k: kill -9 after write $k, then detach again"
  kill_after "$k" pt-bind -v detach "$SLOT"
  expect_rc 0 timeout 60 pt-bind detach "$SLOT"
  assert_detached
  expect_rc 0 timeout 60 pt-bind attach "$SLOT"
  assert_attached
done

for k in 2 5; do
  say "undo round: kill -9 after write $k, then attach"
  kill_after "$k" pt-bind -v detach "$SLOT"
  expect_rc 0 timeout 60 pt-bind attach "$SLOT"
  assert_attached
  assert_no_vfio_node "$GPU"
done
pass

# demo-lib.sh: the few helpers the quick-start demo's two parts share
# (scripts/demo-cycle.sh, scripts/demo-origin.sh). Sourced in the guest after
# /pt-vm/lib.sh, whose assertions stop the demo with what they expected: the
# demo is also the VM tests vm.demo-cycle and vm.demo-origin, so what it
# claims is checked.
#
# The state shown is pt's own: `pt snapshot` of the slot at boot and after
# every step, `pt diff` of the two, so each step shows what it changed.

mkdir -p /tmp/demo
cd /tmp/demo || exit 1
DEMO_T0=$(cut -d' ' -f1 /proc/uptime)

# note TEXT...: a progress line with the time since the demo started.
note() { echo "[$(awk -v a="$DEMO_T0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%6.2fs", b - a }')] $*"; }
# say_more TEXT...: a line under the last progress line.
say_more() { echo "          $*"; }

# show STATUS CMD...: runs CMD, shows it, its output and its exit status with
# the time it took; a status other than STATUS stops the demo (with the
# state dump of lib.sh's fail). The output stays in $OUT, the status in $RC.
show() {
  _want=$1
  shift
  LAST_CMD="$*"
  echo "          \$ $*"
  _s=$(now_ns)
  # Not in $(...): a shell function (the VM stand-in's) runs in this shell.
  if "$@" >/tmp/demo/show.out 2>&1; then RC=0; else RC=$?; fi
  OUT=$(cat /tmp/demo/show.out)
  _ms=$(elapsed_ms "$_s")
  [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/          | /'
  echo "          exit $RC after $_ms ms"
  [ "$RC" = "$_want" ] || fail "exit status of '$LAST_CMD' (see pt(7), EXIT STATUS); the demo stops here" "$_want" "$RC"
}

# snapshot_boot: the reference for the whole demo, boot.json, and the first
# prev.json, which each step's diff starts from.
snapshot_boot() {
  show 0 pt snapshot "$SLOT" -o boot.json
  cp boot.json prev.json
}

# changed: what the last step changed, as `pt diff` words it (exit 1: there
# are changes, 0: none; the text stays in $DIFF), then now becomes prev.json
# for the next step.
changed() {
  pt snapshot "$SLOT" -o now.json >/dev/null || fail "pt snapshot $SLOT" "exit 0" "$?"
  if DIFF=$(pt diff prev.json now.json); then _rc=0; else _rc=$?; fi
  _d=$DIFF
  [ "$_rc" -le 1 ] || fail "pt diff prev.json now.json" "exit 0 or 1" "$_rc: $_d"
  echo "          what changed (pt diff prev.json now.json):"
  printf '%s\n' "$_d" | sed 's/^/            /'
  mv now.json prev.json
}

# step N TITLE CMD...: a numbered step: its progress line, the command
# (which must exit 0), and what it changed.
step() {
  echo
  note "step $1: $2"
  shift 2
  show 0 "$@"
  changed
}

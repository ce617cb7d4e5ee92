# lib.sh: helpers for pt-vm scenarios. Sourced in the guest (busybox ash),
# so POSIX sh only. A scenario runs as root with pt's tools on PATH:
#
#   . /pt-vm/lib.sh
#   expect_rc 0 pt-bind detach "$SLOT"
#   assert_driver "$GPU" vfio-pci
#
# Every assertion prints what it expected and what it got, then exits 1.

PT_JOURNAL=${PT_JOURNAL:-/run/pt/journal.json}
OUT=
RC=

# ---------------------------------------------------------------- devices
# full_bdf 01:00.0 -> 0000:01:00.0
full_bdf() {
  case $1 in
    ????:??:??.?) echo "$1" ;;
    *) echo "0000:$1" ;;
  esac
}

# find_pci VENDOR DEVICE: first function with that ID (hex, no 0x), or "".
find_pci() {
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor" 2>/dev/null)" = "0x$1" ] || continue
    [ "$(cat "$d/device" 2>/dev/null)" = "0x$2" ] || continue
    basename "$d"
    return 0
  done
  return 1
}

# The GPU (virtio-vga, 1af4:1050) and its HDMI-audio stand-in (ich9-intel-hda,
# 8086:293e) share slot 01:00 behind a PCIe root port, in one IOMMU group.
GPU=${GPU:-$(find_pci 1af4 1050 || echo 0000:01:00.0)}
AUD=${AUD:-$(find_pci 8086 293e || echo 0000:01:00.1)}
# The slot as pt-bind takes it: 01:00 (every function of the slot).
SLOT=$(echo "$GPU" | sed 's/^0000://; s/\.[0-7]$//')
export GPU AUD SLOT
# Drivers the devices start on.
GPU_DRIVER=virtio-pci
AUD_DRIVER=snd_hda_intel

driver_of() {
  _l=$(readlink "/sys/bus/pci/devices/$(full_bdf "$1")/driver" 2>/dev/null) || {
    echo none
    return 0
  }
  basename "$_l"
}

# driver_override, "(null)" when unset (as the kernel shows it).
override_of() {
  _f=/sys/bus/pci/devices/$(full_bdf "$1")/driver_override
  if [ -r "$_f" ]; then
    _v=$(cat "$_f")
    echo "${_v:-(null)}"
  else
    echo "(no driver_override file)"
  fi
}

group_of() {
  _l=$(readlink "/sys/bus/pci/devices/$(full_bdf "$1")/iommu_group" 2>/dev/null) || {
    echo none
    return 0
  }
  basename "$_l"
}

# parent_of BDF: the bridge above a function ("" on a root bus).
parent_of() {
  _p=$(basename "$(readlink -f "/sys/bus/pci/devices/$(full_bdf "$1")/..")")
  case $_p in
    ????:??:??.?) echo "$_p" ;;
    *) echo "" ;;
  esac
}

# drm_card_of BDF: /dev/dri/cardN of a display function, or "". Before 5.15
# or so virtio-gpu hangs its DRM device under the virtio device (virtioN/drm).
drm_card_of() {
  _dev=/sys/bus/pci/devices/$(full_bdf "$1")
  for _c in "$_dev"/drm/card* "$_dev"/*/drm/card*; do
    [ -e "$_c" ] || continue
    echo "/dev/dri/$(basename "$_c")"
    return 0
  done
  echo ""
}

# ------------------------------------------------------------- reporting
say() { echo "== $*"; }

# State of the two test functions, one line each; compare before and after.
snapshot() {
  for _d in "$GPU" "$AUD"; do
    echo "$_d driver=$(driver_of "$_d") override=$(override_of "$_d")"
  done
}

journal_text() {
  if [ -f "$PT_JOURNAL" ]; then cat "$PT_JOURNAL"; else echo "(no journal at $PT_JOURNAL)"; fi
}

state_dump() {
  echo "  state now:"
  snapshot | sed 's/^/    /'
  echo "  journal: $(journal_text | tr -d '\n' | tr -s ' ' | cut -c1-400)"
}

# fail MESSAGE [EXPECTED GOT]
fail() {
  echo "FAIL: $1"
  if [ $# -ge 3 ]; then
    echo "  EXPECTED: $2"
    echo "  GOT:      $3"
  fi
  if [ -n "${LAST_CMD:-}" ]; then
    echo "  last command: $LAST_CMD (exit $RC)"
    printf '%s\n' "$OUT" | head -n 30 | sed 's/^/    | /'
  fi
  state_dump
  exit 1
}

pass() { echo "PASS: ${1:-${PT_VM_NAME:-scenario}}"; }

# ------------------------------------------------------------- assertions
assert_eq() {
  [ "$2" = "$3" ] || fail "$1" "$2" "$3"
}

# assert_contains WHAT NEEDLE HAYSTACK
assert_contains() {
  case $3 in
    *"$2"*) ;;
    *) fail "$1" "text containing '$2'" "$(printf '%s' "$3" | head -n 10)" ;;
  esac
}

assert_lacks() {
  case $3 in
    *"$2"*) fail "$1" "text without '$2'" "$(printf '%s' "$3" | head -n 10)" ;;
    *) ;;
  esac
}

# assert_out_has NEEDLE / assert_out_lacks NEEDLE: about the last expect_rc.
assert_out_has() { assert_contains "output of '$LAST_CMD'" "$1" "$OUT"; }
assert_out_lacks() { assert_lacks "output of '$LAST_CMD'" "$1" "$OUT"; }

assert_driver() {
  assert_eq "driver of $1" "$2" "$(driver_of "$1")"
}

assert_override() {
  assert_eq "driver_override of $1" "$2" "$(override_of "$1")"
}

assert_vfio_node() {
  _g=$(group_of "$1")
  [ "$_g" != none ] || fail "IOMMU group of $1" "a group" "none"
  [ -c "/dev/vfio/$_g" ] || fail "/dev/vfio/$_g for $1" "a character device" "$(ls -l /dev/vfio 2>&1 | tr '\n' ' ')"
}

assert_no_vfio_node() {
  _g=$(group_of "$1")
  [ ! -e "/dev/vfio/$_g" ] || fail "/dev/vfio/$_g for $1" "gone (no vfio-pci device in the group)" "it exists"
}

# expect_rc EXPECTED CMD...: run CMD, stdout+stderr into $OUT, status into $RC.
expect_rc() {
  _want=$1
  shift
  LAST_CMD="$*"
  if OUT=$("$@" 2>&1); then RC=0; else RC=$?; fi
  echo "\$ $LAST_CMD  -> exit $RC"
  [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/  | /'
  [ "$RC" = "$_want" ] || fail "exit status of '$LAST_CMD'" "$_want" "$RC"
}

# expect_rc_in "A B" CMD...: like expect_rc with several allowed statuses.
expect_rc_in() {
  _want=$1
  shift
  LAST_CMD="$*"
  if OUT=$("$@" 2>&1); then RC=0; else RC=$?; fi
  echo "\$ $LAST_CMD  -> exit $RC"
  [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/  | /'
  case " $_want " in
    *" $RC "*) ;;
    *) fail "exit status of '$LAST_CMD'" "one of $_want" "$RC" ;;
  esac
}

# assert_snapshot WHAT BEFORE: the state equals an earlier snapshot.
assert_snapshot() {
  _now=$(snapshot)
  [ "$_now" = "$2" ] || fail "$1: state changed" "$(echo "$2" | tr '\n' ';')" "$(echo "$_now" | tr '\n' ';')"
}

# ---------------------------------------------------------------- journal
journal_has() {
  _b=$(full_bdf "$1")
  [ -f "$PT_JOURNAL" ] || return 1
  if command -v jq >/dev/null 2>&1; then
    jq -e --arg d "$_b" '.devices[$d] != null' "$PT_JOURNAL" >/dev/null 2>&1
  else
    grep -q "\"$_b\"" "$PT_JOURNAL"
  fi
}

assert_journal_has() {
  journal_has "$1" || fail "journal entry for $(full_bdf "$1")" "present in $PT_JOURNAL" "$(journal_text | tr -d '\n' | cut -c1-300)"
}

assert_journal_lacks() {
  ! journal_has "$1" || fail "journal entry for $(full_bdf "$1")" "absent from $PT_JOURNAL" "$(journal_text | tr -d '\n' | cut -c1-300)"
}

# No device entries and no unfinished job.
assert_journal_clean() {
  [ -f "$PT_JOURNAL" ] || return 0
  if command -v jq >/dev/null 2>&1; then
    _n=$(jq -r '(.devices // {} | length | tostring) + " " + (.job == null | tostring)' "$PT_JOURNAL" 2>&1)
    [ "$_n" = "0 true" ] || fail "journal $PT_JOURNAL" "no devices and job null" "$(journal_text | tr -d '\n' | cut -c1-300)"
  else
    assert_journal_lacks "$GPU"
    assert_journal_lacks "$AUD"
  fi
}

# ------------------------------------------------------------ state helpers
assert_attached() {
  assert_driver "$GPU" "$GPU_DRIVER"
  assert_driver "$AUD" "$AUD_DRIVER"
  assert_override "$GPU" "(null)"
  assert_override "$AUD" "(null)"
  assert_journal_clean
}

assert_detached() {
  assert_driver "$GPU" vfio-pci
  assert_driver "$AUD" vfio-pci
  assert_override "$GPU" vfio-pci
  assert_override "$AUD" vfio-pci
  assert_vfio_node "$GPU"
  assert_journal_has "$GPU"
  assert_journal_has "$AUD"
}

# wait_for COND_CMD SECONDS: poll every 0.1 s until CMD succeeds.
wait_for() {
  _cmd=$1
  _n=$(($2 * 10))
  while [ "$_n" -gt 0 ]; do
    eval "$_cmd" && return 0
    sleep 0.1
    _n=$((_n - 1))
  done
  return 1
}

# hold_open FILE: a background process keeps FILE open (pid in $HOLDER)
# until release.
hold_open() {
  # shellcheck disable=SC2217 # sleep only has to keep the descriptor
  sleep 100000 <"$1" &
  HOLDER=$!
  wait_for "[ -e /proc/$HOLDER/fd/0 ] && [ \"\$(readlink /proc/$HOLDER/fd/0)\" = \"$1\" ]" 5 ||
    fail "process holding $1" "running with $1 open" "$(readlink "/proc/$HOLDER/fd/0" 2>&1)"
}

release() {
  kill "$HOLDER" 2>/dev/null
  wait "$HOLDER" 2>/dev/null
  HOLDER=
}

# ---------------------------------------------------- used by pt-vm's init
pt_vm_topology() {
  for _d in /sys/bus/pci/devices/*; do
    _b=$(basename "$_d")
    _rm=
    [ -r "$_d/reset_method" ] && _rm=$(cat "$_d/reset_method" 2>/dev/null)
    echo "  $_b $(cat "$_d/vendor"):$(cat "$_d/device") class=$(cat "$_d/class") driver=$(driver_of "$_b") group=$(group_of "$_b") reset_method=${_rm:-(none)}"
  done
}

pt_vm_wait_ready() {
  wait_for '[ "$(driver_of "$GPU")" = "$GPU_DRIVER" ] && [ "$(driver_of "$AUD")" = "$AUD_DRIVER" ]' "$1"
}

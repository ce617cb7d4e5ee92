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
# The quad topology has no such slot: there $AUD is empty and $GPU is the
# first of its solo GPUs.
PT_VM_TOPOLOGY=${PT_VM_TOPOLOGY:-default}
if [ "$PT_VM_TOPOLOGY" = quad ]; then
  GPU=${GPU:-$(find_pci 1af4 1050 || echo 0000:01:00.0)}
  AUD=${AUD:-$(find_pci 8086 293e || echo "")}
else
  GPU=${GPU:-$(find_pci 1af4 1050 || echo 0000:01:00.0)}
  AUD=${AUD:-$(find_pci 8086 293e || echo 0000:01:00.1)}
fi
# The slot as pt-bind takes it: 01:00 (every function of the slot).
SLOT=$(echo "$GPU" | sed 's/^0000://; s/\.[0-7]$//')
export GPU AUD SLOT
# Drivers the devices start on.
GPU_DRIVER=virtio-pci
AUD_DRIVER=snd_hda_intel

# link_name BDF LINK: basename of a device's sysfs link, "none" without one.
link_name() {
  _l=$(readlink "/sys/bus/pci/devices/$(full_bdf "$1")/$2" 2>/dev/null) || {
    echo none
    return 0
  }
  basename "$_l"
}

driver_of() { link_name "$1" driver; }

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

group_of() { link_name "$1" iommu_group; }

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
  for _d in $GPU $AUD; do
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

# soft_fail MSG EXPECTED GOT: a failure that does not stop the scenario (an
# output format, say), so the rest still runs; pass then fails with it.
SOFT_FAILS=0
soft_fail() {
  SOFT_FAILS=$((SOFT_FAILS + 1))
  echo "FAIL (continuing): $1"
  echo "  EXPECTED: $2"
  echo "  GOT:      $3"
  [ -z "${LAST_CMD:-}" ] || echo "  last command: $LAST_CMD (exit $RC)"
}

pass() {
  if [ "$SOFT_FAILS" -gt 0 ]; then
    echo "FAIL: $SOFT_FAILS check(s) failed above (FAIL (continuing))"
    exit 1
  fi
  echo "PASS: ${1:-${PT_VM_NAME:-scenario}}"
}

# skip REASON: the scenario does not apply here (exit 77, which pt-vm and
# ctest report as skipped).
skip() {
  echo "SKIP: ${PT_VM_NAME:-scenario}: $1"
  exit 77
}

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

# run_cmd CMD...: run CMD, stdout+stderr into $OUT, status into $RC, and echo both.
run_cmd() {
  LAST_CMD="$*"
  if OUT=$("$@" 2>&1); then RC=0; else RC=$?; fi
  echo "\$ $LAST_CMD  -> exit $RC"
  [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/  | /'
}

# expect_rc EXPECTED CMD...: run_cmd, then assert the exit status.
expect_rc() {
  _want=$1
  shift
  run_cmd "$@"
  [ "$RC" = "$_want" ] || fail "exit status of '$LAST_CMD'" "$_want" "$RC"
}

# expect_rc_in "A B" CMD...: like expect_rc with several allowed statuses.
expect_rc_in() {
  _want=$1
  shift
  run_cmd "$@"
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

# expect_rc_soft STATUS CMD...: like expect_rc, but a different status is a
# soft_fail (the scenario goes on to check the state the command left).
expect_rc_soft() {
  _want=$1
  shift
  LAST_CMD="$*"
  if OUT=$("$@" 2>&1); then RC=0; else RC=$?; fi
  echo "\$ $LAST_CMD  -> exit $RC"
  [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/  | /'
  [ "$RC" = "$_want" ] || soft_fail "exit status of '$LAST_CMD'" "$_want" "$RC: $(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-300)"
}

# expect_json STATUS CMD...: like expect_rc, but $OUT is stdout only (the
# JSON) and $ERR stderr; fails unless stdout parses as JSON (with jq).
expect_json() {
  _want=$1
  shift
  LAST_CMD="$*"
  if OUT=$("$@" 2>/tmp/.pt-vm-stderr); then RC=0; else RC=$?; fi
  ERR=$(cat /tmp/.pt-vm-stderr)
  echo "\$ $LAST_CMD  -> exit $RC"
  [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/  | /'
  [ -z "$ERR" ] || printf '%s\n' "$ERR" | sed 's/^/  ! /'
  [ "$RC" = "$_want" ] || fail "exit status of '$LAST_CMD'" "$_want" "$RC"
  if command -v jq >/dev/null 2>&1; then
    printf '%s' "$OUT" | jq -e . >/dev/null 2>&1 || fail "stdout of '$LAST_CMD'" "valid JSON" "$OUT"
  fi
}

# assert_json WHAT JQ_FILTER [jq args...]: the filter is true of $OUT.
assert_json() {
  _what=$1
  _flt=$2
  shift 2
  command -v jq >/dev/null 2>&1 || {
    echo "note: no jq in the guest; not checking $_what"
    return 0
  }
  printf '%s' "$OUT" | jq -e "$@" "$_flt" >/dev/null 2>&1 ||
    fail "$_what" "$_flt" "$(printf '%s' "$OUT" | jq -c "$@" "$_flt" 2>&1 | head -c 400)"
}

# ---------------------------------------------------------------- pt-reset
# Reset methods in the order pt-reset lists and tries them.
RESET_METHODS="device_specific acpi flr af_flr pm bus slot rescan"
export RESET_METHODS

# method_row DEV METHOD: METHOD's row in DEV's block of the last
# `pt-reset methods` text output ($OUT), leading blanks removed:
# "NAME OURS KERNEL REASON...".
method_row() {
  printf '%s\n' "$OUT" | awk -v dev="$(full_bdf "$1")" -v m="$2" '
    /^[^ ]/ { on = ($1 == dev); next }
    on && $1 == m { sub(/^ +/, ""); print; exit }'
}

# assert_reset_row DEV METHOD: the last text output ($OUT) has DEV's result
# line "DEV  METHOD  ok  N ms (prepare N, reset N, wait-ready N, restore N, verify N)".
assert_reset_row() {
  _d=$(full_bdf "$1")
  _n='[0-9]+(\.[0-9]+)?'
  # The phases follow only with -v (pt-reset(8)); --json always has them.
  printf '%s\n' "$OUT" | grep -Eq "^$_d +$2 +ok +$_n ms( \(prepare $_n, reset $_n, wait-ready $_n, restore $_n, verify $_n\))?\$" ||
    soft_fail "result line of $_d in the output of '$LAST_CMD'" "$_d  $2  ok  N ms [(prepare N, reset N, wait-ready N, restore N, verify N) with -v]" "$(printf '%s\n' "$OUT" | grep "^$_d" || echo none)"
}

# assert_reset_json DEV METHOD: $OUT (a --json reset) has DEV's entry with
# METHOD, result ok, via kernel or pt, and every phase timed.
assert_reset_json() {
  assert_json "JSON result of $(full_bdf "$1")" \
    '[.[] | select(.device == $d)] | length == 1 and (.[0] | .method == $m and .result == "ok" and (.via == "kernel" or .via == "pt") and (.total_ms | type == "number") and (.phases_ms | keys == ["prepare", "reset", "restore", "verify", "wait_ready"]) and ([.phases_ms[]] | all(type == "number")))' \
    --arg d "$(full_bdf "$1")" --arg m "$2"
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

# ------------------------------------------------------------ topologies
# A scenario picks its machine with a header line `# pt-vm: topology=NAME`
# (default, solo, quad; see README.md). $PT_VM_TOPOLOGY names it in the guest.

# display_functions: every display-class function (class 0x03xxxx).
display_functions() {
  for _d in /sys/bus/pci/devices/*; do
    case $(cat "$_d/class" 2>/dev/null) in 0x03????) basename "$_d" ;; esac
  done
}

# children_of BRIDGE: the functions on the bridge's secondary bus.
children_of() {
  for _c in "/sys/bus/pci/devices/$(full_bdf "$1")"/????:??:??.?; do
    [ -e "$_c" ] && basename "$_c"
  done
  return 0
}

# solo_gpus: display functions alone on their bus (the only child of their
# bridge), so a secondary bus reset touches nothing else. One per line.
solo_gpus() {
  for _d in $(display_functions); do
    _p=$(parent_of "$_d")
    [ -n "$_p" ] || continue
    [ "$(children_of "$_p" | wc -l)" = 1 ] && echo "$_d"
  done
  return 0
}

# need_solo N: sets $SOLOS to the first N solo GPUs (space-separated) and
# $SOLO to the first; fails the scenario when the topology has fewer.
need_solo() {
  SOLOS=$(solo_gpus | head -n "$1" | tr '\n' ' ' | sed 's/ $//')
  SOLO=${SOLOS%% *}
  export SOLO SOLOS
  [ "$(echo "$SOLOS" | wc -w)" -ge "$1" ] ||
    fail "GPUs alone on their bus (topology $PT_VM_TOPOLOGY)" "$1 (use '# pt-vm: topology=solo' or quad)" "${SOLOS:-none}"
}

# to_vfio BDF...: bind each function to vfio-pci by hand (driver_override,
# unbind, drivers_probe); for setting up a scenario without pt-bind.
to_vfio() {
  for _b in "$@"; do
    _b=$(full_bdf "$_b")
    echo vfio-pci >"/sys/bus/pci/devices/$_b/driver_override"
    [ -e "/sys/bus/pci/devices/$_b/driver" ] && echo "$_b" >"/sys/bus/pci/devices/$_b/driver/unbind"
    echo "$_b" >/sys/bus/pci/drivers_probe
    assert_driver "$_b" vfio-pci
  done
}

# ------------------------------------------------------------ reset proof
# The kernel saves and restores the config header around a reset and may
# print nothing, so "the reset write returned 0" proves little. Two proofs:
#
# 1. Device state (mark_device / assert_was_reset): before the reset a
#    register inside the function is set to a value only a reset clears, and
#    read back afterwards through the BAR (busybox devmem on /dev/mem; the
#    kernel boots with iomem=relaxed):
#      virtio (1af4:*)      device_status in the modern common config (found
#                           from the vendor capability with cfg_type 1),
#                           offset 0x14: marked 0x03 (ACKNOWLEDGE|DRIVER),
#                           0 after a function reset
#      Intel HDA (8086:*, class 0x0403)  CORBLBASE, BAR0 + 0x40: marked
#                           0x12345680, 0 after a reset
#    QEMU clears both on an FLR and on a secondary bus reset; QEMU 7.2 does
#    not reset anything on a D3hot->D0 transition (its virtio-pci PM
#    capability claims NoSoftRst- but has no soft reset), and a remove +
#    rescan never touches the function.
# 2. Config writes (assert_reset_cycle): mark_device also arms kprobes on the
#    kernel's config accessors (pci_conf1_write, pci_mmcfg_write), which every
#    config write passes through, sysfs `config` writes by tools included.
#    The trace shows the mechanism reaching the hardware: the FLR bit in
#    Device Control, PMCSR D3hot then D0, Secondary Bus Reset set and cleared
#    in the parent bridge's Bridge Control.
# dmesg also gets the kernel's own view: mark_device turns on dynamic debug
# for pci_restore_config_dword, which logs every header register that differed
# after the reset ("restoring config space at offset 0x14 (was 0x0, ...)" on
# 5.10/6.1; "restore config 0x14: 0x00000000 -> ..." on newer kernels), and
# for the bridge's wait for its link after a bus reset.

# cfg_read BDF OFFSET [BYTES]: config space value, decimal (BYTES 1, 2 or 4).
cfg_read() {
  _n=${3:-1}
  od -An -tu"$_n" -j "$(($2))" -N "$_n" "/sys/bus/pci/devices/$(full_bdf "$1")/config" 2>/dev/null | tr -d ' \n'
}

# cfg_write8 BDF OFFSET VALUE: one config byte through sysfs.
cfg_write8() {
  # shellcheck disable=SC2059 # the format is the octal escape we build
  printf "\\$(printf %o $(($3)))" |
    dd of="/sys/bus/pci/devices/$(full_bdf "$1")/config" bs=1 seek="$(($2))" count=1 conv=notrunc 2>/dev/null
}

# cap_offset BDF CAP_ID: offset of the first capability with that ID, or "".
cap_offset() {
  _p=$(cfg_read "$1" 0x34)
  _guard=48
  while [ -n "$_p" ] && [ "$_p" -ne 0 ] && [ $_guard -gt 0 ]; do
    [ "$(cfg_read "$1" "$_p")" = "$(($2))" ] && {
      echo "$_p"
      return 0
    }
    _p=$(cfg_read "$1" $((_p + 1)))
    _guard=$((_guard - 1))
  done
  echo ""
}

# bar_start BDF N: physical start of BAR N (decimal), from sysfs `resource`.
bar_start() {
  _r=$(sed -n "$(($2 + 1))p" "/sys/bus/pci/devices/$(full_bdf "$1")/resource" | cut -d' ' -f1)
  echo $((_r))
}

# proof_register BDF: "ADDRESS WIDTH MARK" of the register the proof uses
# (ADDRESS in hex), or fails when the function has none we know.
proof_register() {
  _b=$(full_bdf "$1")
  _ven=$(cat "/sys/bus/pci/devices/$_b/vendor")
  _cls=$(cat "/sys/bus/pci/devices/$_b/class")
  case $_ven:$_cls in
    0x1af4:*)
      # Vendor-specific capabilities (ID 9): cfg_type at +3, BAR at +4,
      # offset in the BAR at +8. cfg_type 1 is the common configuration.
      _p=$(cfg_read "$_b" 0x34)
      _guard=48
      while [ -n "$_p" ] && [ "$_p" -ne 0 ] && [ $_guard -gt 0 ]; do
        if [ "$(cfg_read "$_b" "$_p")" = 9 ] && [ "$(cfg_read "$_b" $((_p + 3)))" = 1 ]; then
          _bar=$(cfg_read "$_b" $((_p + 4)))
          _off=$(cfg_read "$_b" $((_p + 8)) 4)
          printf '0x%x 8 0x03\n' $(($(bar_start "$_b" "$_bar") + _off + 0x14))
          return 0
        fi
        _p=$(cfg_read "$_b" $((_p + 1)))
        _guard=$((_guard - 1))
      done
      echo "no virtio common configuration (vendor capability with cfg_type 1) in $_b"
      return 1
      ;;
    0x8086:0x0403??)
      printf '0x%x 32 0x12345680\n' $(($(bar_start "$_b" 0) + 0x40))
      ;;
    *)
      echo "no proof register for $_b ($_ven, class $_cls): neither virtio nor Intel HDA"
      return 1
      ;;
  esac
}

# proof_reg BDF: sets PR_ADDR, PR_WIDTH, PR_MARK from proof_register.
proof_reg() {
  _pr=$(proof_register "$1") || fail "reset proof register of $1" "a virtio or Intel HDA function" "$_pr"
  # shellcheck disable=SC2086 # three words
  set -- $_pr
  PR_ADDR=$1 PR_WIDTH=$2 PR_MARK=$3
}

# device_awake BDF: make the function answer memory reads: runtime PM off
# (vfio-pci suspends an idle device to D3hot), D0 (5.10's vfio-pci puts it in
# D3hot itself), memory decoding on. Refuses a BAR the kernel did not restore.
device_awake() {
  _b=$(full_bdf "$1")
  _dir=/sys/bus/pci/devices/$_b
  [ -w "$_dir/power/control" ] && echo on >"$_dir/power/control"
  _pm=$(cap_offset "$_b" 1)
  if [ -n "$_pm" ]; then
    _st=$(cfg_read "$_b" $((_pm + 4)))
    if [ $((_st & 3)) -ne 0 ]; then
      cfg_write8 "$_b" $((_pm + 4)) $((_st & ~3 & 0xff))
      sleep 0.02
    fi
  fi
  # The BAR in config space must hold what the kernel assigned.
  for _i in 0 1 2 3 4 5; do
    _s=$(bar_start "$_b" $_i)
    [ "$_s" -ne 0 ] || continue
    _lo=$(cfg_read "$_b" $((0x10 + 4 * _i)) 4)
    if [ $((_lo & 1)) -eq 0 ] && [ $((_lo & ~15 & 0xffffffff)) -ne $((_s & 0xffffffff)) ]; then
      fail "BAR $_i of $_b in config space" "$(printf '0x%x' $((_s & 0xffffffff)))" "$(printf '0x%x' "$_lo")"
    fi
  done
  _cmd=$(cfg_read "$_b" 4)
  [ $((_cmd & 2)) -ne 0 ] || cfg_write8 "$_b" 4 $((_cmd | 2))
}

# proof_value BDF: sets PR_VALUE to the proof register's current value (hex,
# as devmem prints it).
proof_value() {
  device_awake "$1"
  proof_reg "$1"
  PR_VALUE=$(devmem "$PR_ADDR" "$PR_WIDTH")
}

# Config-write tracing through kprobes. Sets PT_TRACE ("" when unavailable).
PT_TRACE=
cfg_trace_start() {
  if [ -z "$PT_TRACE" ]; then
    for _t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
      [ -f "$_t/kprobe_events" ] && PT_TRACE=$_t && break
    done
    if [ -z "$PT_TRACE" ] && mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; then
      PT_TRACE=/sys/kernel/tracing
    fi
    [ -n "$PT_TRACE" ] || {
      echo "note: no tracefs: config writes are not traced"
      return 0
    }
  fi
  if [ ! -d "$PT_TRACE/events/ptvm" ]; then
    # x86-64 calling convention: seg, bus, devfn, reg, len, value.
    for _f in pci_conf1_write pci_mmcfg_write; do
      echo "p:ptvm/$_f $_f bus=%si:u32 devfn=%dx:u32 reg=%cx:s32 len=%r8:s32 val=%r9:x32" \
        >>"$PT_TRACE/kprobe_events" 2>/dev/null || echo "note: cannot trace $_f"
    done
    echo 1 >"$PT_TRACE/events/ptvm/enable" 2>/dev/null || {
      echo "note: cannot enable the config-write kprobes"
      PT_TRACE=
      return 0
    }
  fi
  echo >"$PT_TRACE/trace"
}

# cfg_writes BDF: traced config writes to BDF since mark_device, one
# "REG LEN VALUE" line each (REG and LEN decimal, VALUE hex).
cfg_writes() {
  [ -n "$PT_TRACE" ] || return 0
  _b=$(full_bdf "$1")
  _bus=$((0x$(echo "$_b" | cut -d: -f2)))
  _dev=$((0x$(echo "$_b" | cut -d: -f3 | cut -d. -f1)))
  _fn=$(echo "$_b" | cut -d. -f2)
  _devfn=$((_dev * 8 + _fn))
  sed -n "s/.* bus=$_bus devfn=$_devfn reg=\\([0-9]*\\) len=\\([0-9]*\\) val=\\(0x[0-9a-f]*\\).*/\\1 \\2 \\3/p" "$PT_TRACE/trace"
}

# wrote_bits BDF REG MASK [CLEARED]: whether a traced write covering REG set
# every bit of MASK (the byte-lane of REG within the write), or, with
# CLEARED, cleared them all after such a write.
wrote_bits() {
  _seen=0
  _at=$(($2))
  _cfgw=$(cfg_writes "$1")
  while read -r _reg _len _val; do
    [ -n "$_reg" ] || continue
    if [ "$_at" -lt "$_reg" ] || [ "$_at" -ge $((_reg + _len)) ]; then continue; fi
    _v=$(((_val >> (8 * (_at - _reg))) & 0xff))
    if [ $((_v & $3)) -eq $(($3)) ]; then
      _seen=1
    elif [ $_seen = 1 ] && [ $((_v & $3)) -eq 0 ]; then
      _seen=2
    fi
  done <<EOT
$_cfgw
EOT
  if [ -n "${4:-}" ]; then [ $_seen = 2 ]; else [ $_seen -ge 1 ]; fi
}

# mark_device BDF...: arm both proofs for each function (unbound or on
# vfio-pci only: a live driver would be confused by the marked register).
PT_MARK=0
mark_device() {
  PT_MARK=$((PT_MARK + 1))
  echo "pt-vm: mark $PT_MARK $*" >/dev/kmsg
  _dd=/proc/dynamic_debug/control
  [ -w $_dd ] || _dd=/sys/kernel/debug/dynamic_debug/control
  if [ -w $_dd ]; then
    echo 'func pci_restore_config_dword +p' >$_dd 2>/dev/null
    echo 'func pci_bridge_wait_for_secondary_bus +p' >$_dd 2>/dev/null
  fi
  cfg_trace_start
  for _m in "$@"; do
    _m=$(full_bdf "$_m")
    case $(driver_of "$_m") in
      vfio-pci | none) ;;
      *) fail "driver of $_m when marking it for the reset proof" "vfio-pci or none" "$(driver_of "$_m")" ;;
    esac
    device_awake "$_m"
    proof_reg "$_m"
    devmem "$PR_ADDR" "$PR_WIDTH" "$PR_MARK"
    _got=$(devmem "$PR_ADDR" "$PR_WIDTH")
    [ $((_got)) -eq $((PR_MARK)) ] || fail "proof register of $_m at $PR_ADDR after writing $PR_MARK" "$PR_MARK" "$_got"
    echo "   marked $_m: register $PR_ADDR = $_got"
  done
}

# assert_was_reset BDF...: every function's marked register is back at 0.
assert_was_reset() {
  for _m in "$@"; do
    _m=$(full_bdf "$_m")
    proof_value "$_m"
    [ $((PR_VALUE)) -eq 0 ] ||
      fail "reset proof: register $PR_ADDR of $_m after the reset" "0 (the function was reset)" "$PR_VALUE (the value marked before the reset: not reset)"
    echo "   $_m was reset: its marked register $PR_ADDR reads $PR_VALUE"
  done
}

# assert_kept_state BDF...: the marked register still holds its mark (the
# function was not reset: a refusal or a dry run).
assert_kept_state() {
  for _m in "$@"; do
    _m=$(full_bdf "$_m")
    proof_value "$_m"
    [ $((PR_VALUE)) -eq $((PR_MARK)) ] ||
      fail "register $PR_ADDR of $_m (no reset expected)" "$PR_MARK (its mark)" "$PR_VALUE"
    echo "   $_m was not reset: its register $PR_ADDR still reads $PR_VALUE"
  done
}

# assert_reset_cycle BDF METHOD: the config-write trace shows METHOD's
# mechanism on the wire since mark_device (skipped without tracefs).
assert_reset_cycle() {
  _b=$(full_bdf "$1")
  [ -n "$PT_TRACE" ] || {
    echo "note: no config-write trace; not checking how $_b was reset"
    return 0
  }
  case $2 in
    flr)
      _x=$(cap_offset "$_b" 0x10)
      # Device Control (cap + 8), bit 15: Initiate Function Level Reset.
      wrote_bits "$_b" $((_x + 9)) 0x80 ||
        fail "config writes to $_b" "Device Control with Initiate FLR (offset $((_x + 8)) bit 15)" "$(cfg_writes "$_b" | tr '\n' ';')"
      ;;
    pm)
      _x=$(cap_offset "$_b" 1)
      wrote_bits "$_b" $((_x + 4)) 3 cleared ||
        fail "config writes to $_b" "PMCSR (offset $((_x + 4))) to D3hot, then to D0" "$(cfg_writes "$_b" | tr '\n' ';')"
      ;;
    bus | slot)
      _p=$(parent_of "$_b")
      # Bridge Control (0x3e), bit 6: Secondary Bus Reset.
      wrote_bits "$_p" 0x3e 0x40 cleared ||
        fail "config writes to the bridge $_p above $_b" "Bridge Control with Secondary Bus Reset set, then cleared" "$(cfg_writes "$_p" | tr '\n' ';')"
      ;;
    *) fail "assert_reset_cycle method" "flr, pm, bus or slot" "$2" ;;
  esac
  echo "   config writes show the $2 cycle on $_b"
}

# assert_reenumerated BDF: since the last mark the kernel removed BDF and
# found it again on a scan (what a remove + rescan does; nothing resets the
# function itself).
assert_reenumerated() {
  _b=$(full_bdf "$1")
  _log=$(dmesg | sed -n "/pt-vm: mark $PT_MARK /,\$p")
  _id=$(sed 's/0x//' "/sys/bus/pci/devices/$_b/vendor"):$(sed 's/0x//' "/sys/bus/pci/devices/$_b/device")
  assert_contains "kernel log since mark $PT_MARK" "$_b: [$_id] type 00" "$_log"
  echo "   $_b was removed and enumerated again"
}

# check_no_host_driver BDF: reports whether the kernel log since the last
# mark shows a host driver (virtio-pci, virtio-gpu, snd_hda_intel) taking
# BDF. A note, not a failure: the PCI core attaches a driver to a rescanned
# device at once (pci_bus_add_device -> device_attach, drivers_autoprobe
# notwithstanding) and the new device has no driver_override yet, so the host
# driver probes it before pt-reset can take it back (pt-reset(8), NOTES).
check_no_host_driver() {
  _seen=$(dmesg | sed -n "/pt-vm: mark $PT_MARK /,\$p" |
    grep -E "(virtio-pci|snd_hda_intel) $1|virtio-(vga|gpu-pci) detected at $1" || true)
  [ -z "$_seen" ] || echo "   note: the host driver probed $1 during the rescan (kernel behaviour): $(echo "$_seen" | tr '\n' ';')"
}

# now_ns: the kernel's monotonic clock in nanoseconds (from /proc/timer_list;
# busybox date has no %N). elapsed_ms T0 [T1]: milliseconds since T0, 0.1 ms.
now_ns() {
  sed -n 's/^now at \([0-9]*\) nsecs.*/\1/p' /proc/timer_list | head -n1
}
elapsed_ms() {
  awk -v a="$1" -v b="${2:-$(now_ns)}" 'BEGIN{printf "%.1f", (b - a) / 1e6}'
}

# assert_no_cfg_writes BDF...: nothing wrote to their config space since the
# trace started (cfg_trace_start or mark_device).
assert_no_cfg_writes() {
  [ -n "$PT_TRACE" ] || return 0
  for _b in "$@"; do
    _w=$(cfg_writes "$_b")
    [ -z "$_w" ] || fail "config writes to $(full_bdf "$_b")" "none" "$(echo "$_w" | tr '\n' ';')"
  done
}

# reset_method_of BDF: the kernel's reset_method, "(no reset_method file)"
# when there is none (5.10, or a function without methods).
reset_method_of() {
  _f=/sys/bus/pci/devices/$(full_bdf "$1")/reset_method
  if [ -r "$_f" ]; then cat "$_f"; else echo "(no reset_method file)"; fi
}

# kernel_has_reset_method: the kernel knows reset_method (5.15 and later),
# judged by any function having the file.
kernel_has_reset_method() {
  for _f in /sys/bus/pci/devices/*/reset_method; do
    [ -e "$_f" ] && return 0
  done
  return 1
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

# Every virtio GPU on virtio-pci and the audio function (when the topology
# has one) on snd_hda_intel.
pt_vm_devices_ready() {
  for _d in $(display_functions); do
    [ "$(cat "/sys/bus/pci/devices/$_d/vendor")" = 0x1af4 ] || continue
    [ "$(driver_of "$_d")" = "$GPU_DRIVER" ] || return 1
  done
  [ -z "$AUD" ] || [ "$(driver_of "$AUD")" = "$AUD_DRIVER" ]
}

pt_vm_wait_ready() {
  wait_for pt_vm_devices_ready "$1"
}

# ---------------------------------------------------------------- pt-vgaarb
# arb_line BDF: the arbiter's status line for BDF, read raw through a fresh
# descriptor: "target PCI:BDF", then one read() of 1024 bytes (every read
# returns the line from its start, so a read loop, `read` or cat never ends).
arb_line() {
  exec 8<>/dev/vga_arbiter
  echo "target PCI:$(full_bdf "$1")" >&8
  dd bs=1024 count=1 <&8 2>/dev/null
  exec 8>&-
}

# arb_field BDF FIELD: count, decodes, owns or locks (locks with its "(io:mem)").
arb_field() {
  arb_line "$1" | tr ',' '\n' | sed -n "s/^$2[:=]//p"
}

# cmd_bits BDF: the IO and MEM enable bits of the PCI command register as
# pt-vgaarb prints them (none, io, mem, io+mem).
cmd_bits() {
  case $(($(cfg_read "$1" 4 2) & 3)) in
    0) echo none ;; 1) echo io ;; 2) echo mem ;; 3) echo io+mem ;;
  esac
}

# boot_vga_device: the function whose boot_vga is 1.
boot_vga_device() {
  for _d in /sys/bus/pci/devices/*; do
    [ "$(cat "$_d/boot_vga" 2>/dev/null)" = 1 ] && basename "$_d"
  done
  return 0
}

# journal_vga BDF FIELD: a field of the journal's VGA record of BDF ("null" without one).
journal_vga() {
  [ -f "$PT_JOURNAL" ] || { echo null; return 0; }
  jq -r --arg d "$(full_bdf "$1")" --arg f "$2" '.vga[$d][$f] | if . == null then "null" else tostring end' "$PT_JOURNAL"
}

# ------------------------------------------------------------- pt-console
# Consoles are found by name, never by number (vtcon and fb numbers move).

# vtcon_named NAME: the /sys/class/vtconsole/vtconN whose name, mark
# stripped, is NAME ("frame buffer device"); "" when none is.
vtcon_named() {
  for _v in /sys/class/vtconsole/vtcon*; do
    [ -e "$_v/name" ] || continue
    [ "$(sed 's/^([SM]) //' "$_v/name")" = "$1" ] && {
      echo "$_v"
      return 0
    }
  done
  return 0
}

# vtcon_bind NAME: 1, 0, or "none" without such a vtconsole.
vtcon_bind() {
  _v=$(vtcon_named "$1")
  if [ -n "$_v" ]; then cat "$_v/bind"; else echo none; fi
}

assert_vtcon_bind() {
  assert_eq "bind of vtconsole '$1'" "$2" "$(vtcon_bind "$1")"
}

# fbs_of BDF: the fbN whose device is BDF or below it, space-separated.
fbs_of() {
  _b=$(readlink -f "/sys/bus/pci/devices/$(full_bdf "$1")")
  _out=
  for _f in /sys/class/graphics/fb[0-9]*; do
    [ -e "$_f/device" ] || continue
    case $(readlink -f "$_f/device") in "$_b" | "$_b"/*) _out="$_out $(basename "$_f")" ;; esac
  done
  echo "${_out# }"
}

# vtconsoles: one line per vtconsole, "vtconN NAME bind=B", for comparing states.
vtconsoles() {
  for _v in /sys/class/vtconsole/vtcon*; do
    [ -e "$_v/name" ] && echo "$(basename "$_v") $(cat "$_v/name") bind=$(cat "$_v/bind")"
  done
}

# console_journal BDF: the journal's console records for BDF as compact
# JSON ("null" when none).
console_journal() {
  if [ -f "$PT_JOURNAL" ]; then
    jq -c --arg d "$(full_bdf "$1")" '.consoles[$d]' "$PT_JOURNAL" 2>/dev/null || echo null
  else
    echo null
  fi
}

# fbcon_line PATTERN: the last dmesg line of fbcon matching PATTERN.
fbcon_line() { dmesg | grep "fbcon: " | grep -- "$1" | tail -n 1; }

# ------------------------------------------------------------- the cycle
# State of a function as the recovery recipe sees it (issue 6). Read from
# config space, not from the kernel's cached power_state: the VM stand-in
# writes PMCSR through VFIO.

# pm_state BDF: D0, D1, D2 or D3hot from PMCSR; "-" without a PM capability.
pm_state() {
  _pm=$(cap_offset "$1" 1)
  [ -n "$_pm" ] || { echo -; return 0; }
  case $(($(cfg_read "$1" $((_pm + 4)) 2) & 3)) in
    0) echo D0 ;; 1) echo D1 ;; 2) echo D2 ;; 3) echo D3hot ;;
  esac
}

# cmd_reg BDF: the command register as 0xNNNN.
cmd_reg() { printf '0x%04x' "$(cfg_read "$1" 4 2)"; }

# arb_of BDF: "decodes/owns" from the arbiter, "-" for a function it does
# not track (not VGA class).
arb_of() {
  case $(cat "/sys/bus/pci/devices/$(full_bdf "$1")/class") in
    0x0300*) echo "$(arb_field "$1" decodes)/$(arb_field "$1" owns)" ;;
    *) echo - ;;
  esac
}

# fbcon_state BDF: "fbcon=B tty1=fbN(BDF's|other)" for the frame buffer
# vtconsole's bind and tty1's mapping (from fbcon's con2fbmap via pt-console).
fbcon_state() {
  _t=$(pt-console --json list 2>/dev/null | jq -r 'if .con2fb == null or .con2fb["1"] == null then "-" else "fb\(.con2fb["1"])" end')
  _whose=other
  case " $(fbs_of "$1") " in *" $_t "*) _whose=gpu ;; esac
  echo "fbcon=$(vtcon_bind "frame buffer device") tty1=$_t($_whose)"
}

# drm_state BDF: "cardN CONN=status ..." or "-" without a DRM card.
drm_state() {
  _c=$(drm_card_of "$1")
  [ -n "$_c" ] || { echo -; return 0; }
  _n=$(basename "$_c")
  _out=$_n
  for _s in /sys/class/drm/"$_n"-*/status; do
    [ -e "$_s" ] || continue
    _cn=$(basename "$(dirname "$_s")")
    _out="$_out ${_cn#"$_n"-}=$(cat "$_s")"
  done
  echo "$_out"
}

# cycle_state: one line per function, the state the cycle scenarios compare:
# driver, override, PM state, command register, decodes/owns, DRM card.
cycle_state() {
  for _d in $GPU $AUD; do
    echo "$_d drv=$(driver_of "$_d") ovr=$(override_of "$_d") pm=$(pm_state "$_d") cmd=$(cmd_reg "$_d") arb=$(arb_of "$_d") drm=$(drm_state "$_d" | tr ' ' ',')"
  done
}

# tty1_on_gpu BDF: fbcon is bound and maps tty1 to one of BDF's framebuffers.
tty1_on_gpu() {
  case $(fbcon_state "$1") in "fbcon=1 tty1=fb"*"(gpu)") return 0 ;; esac
  return 1
}

# vm_dirty BDF: the VM stand-in uses BDF through VFIO and leaves it dirty;
# while it holds the device (the VM running) the function must show bus
# mastering on, memory decode off and, with a PM capability, D3hot. Prints
# that state; the stand-in then exits without cleanup. Sets DIRTY.
vm_dirty() {
  _b=$(full_bdf "$1")
  pt-vm-standin "$_b" --hold 30 >/tmp/standin.out 2>&1 &
  _sp=$!
  _want_pm=D3hot
  [ -n "$(cap_offset "$_b" 1)" ] || _want_pm=-
  _dirty() {
    _c=$(cfg_read "$_b" 4 2)
    [ -n "$_c" ] && [ $((_c & 4)) -ne 0 ] && [ $((_c & 2)) -eq 0 ] && [ "$(pm_state "$_b")" = "$_want_pm" ]
  }
  if ! wait_for _dirty 20; then
    kill "$_sp" 2>/dev/null
    wait "$_sp" 2>/dev/null
    fail "state of $_b while the stand-in holds it" "bus master on, memory off, $_want_pm" \
      "cmd=$(cmd_reg "$_b") pm=$(pm_state "$_b"); stand-in: $(cat /tmp/standin.out)"
  fi
  DIRTY="$_b pm=$(pm_state "$_b") cmd=$(cmd_reg "$_b") (stand-in: $(cat /tmp/standin.out))"
  echo "   VM stand-in left $DIRTY"
  kill "$_sp" 2>/dev/null
  wait "$_sp" 2>/dev/null
  return 0
}

# recipe BDF: the recovery recipe of pt(7), RECOVERY, for the GPU BDF, run
# by `pt-bind recover` in one process (its one definition; a pt.conf table
# naming BDF gives its own recover list); the step that fails stops it with
# its own exit status.
recipe() {
  pt-bind recover "$(full_bdf "$1")" </dev/null
}

# recipe_pipeline BDF: the same recipe as the shell pipeline of separate
# tools that `pt-bind recover --recipe` prints, for shell users; each
# command stops it with its own exit status.
recipe_pipeline() {
  _r=$(full_bdf "$1")
  _steps=$(pt-bind recover --recipe "$_r") || return
  while read -r _c; do
    # shellcheck disable=SC2086 # the recipe's words: tool, arguments, BDF
    $_c </dev/null || return
  done <<EOF
$_steps
EOF
}

# journal_leftovers: what the journal still records ("" when nothing):
# devices, job, vga and consoles records.
journal_leftovers() {
  [ -f "$PT_JOURNAL" ] || return 0
  jq -r '[(.devices // {} | keys[] | "device " + .), (if .job == null then empty else "job" end),
          (.vga // {} | keys[] | "vga " + .), (.consoles // {} | keys[] | "consoles " + .)] | join(" ")' \
    "$PT_JOURNAL"
}

# assert_cycle_healthy BDF BOOT: after the recipe: both functions in the
# state BOOT (a cycle_state from before the cycle: drivers, PM, command
# register, decodes/owns, DRM card and connectors), fbcon back on BDF's
# framebuffer, the journal empty, and pt-drm check exits 0.
assert_cycle_healthy() {
  assert_attached
  assert_eq "state of both functions (cycle_state)" "$2" "$(cycle_state)"
  assert_eq "decodes of $1" io+mem "$(arb_field "$1" decodes)"
  assert_eq "power state of $1" D0 "$(pm_state "$1")"
  tty1_on_gpu "$1" || fail "console after the recipe" "fbcon=1 tty1 on a framebuffer of $1 ($(fbs_of "$1"))" "$(fbcon_state "$1")"
  assert_eq "journal leftovers" "" "$(journal_leftovers)"
  expect_rc 0 pt-drm check "$1"
}

# kernel_warning_lines: the kernel's own lines (facility 0) of level warning
# or worse, from busybox's raw dmesg ("<4>..."; it has no -l). Lines written
# to /dev/kmsg by the scenarios are facility user ("<12>"). The clocksource
# watchdog's complaints, and hrtimer's about a slow interrupt, are left out:
# they come from TCG on a loaded host ("clocksource: Long readout interval,
# skipping watchdog check", "hrtimer: interrupt took 562809392 ns").
kernel_warning_lines() { dmesg -r | grep '^<[0-4]>' | grep -v -e 'clocksource: ' -e 'hrtimer: interrupt took ' || true; }
# kernel_warnings: how many there are.
kernel_warnings() { kernel_warning_lines | grep -c . || true; }

# write_recipe_conf: /etc/pt/pt.conf naming the GPU with its audio function
# and the recovery recipe of pt(7) as its recover list, with the bus reset.
write_recipe_conf() {
  mkdir -p /etc/pt
  cat >/etc/pt/pt.conf <<CONF
[device.gpu]
bdf = "$(full_bdf "$GPU")"
companions = ["$(full_bdf "$AUD")"]
recover = ["reset", "attach", "drm-wait", "vgaarb", "console", "drm-check"]

[device.gpu.step.reset]
method = "bus"
CONF
}

# hook_state: what a hypervisor hook's calls must leave as they found it;
# assert_unchanged WHAT compares it with $boot, taken before the calls.
hook_state() {
  snapshot
  echo "vtcon bind=$(vtcon_bind "frame buffer device")"
  echo "decodes=$(arb_field "$GPU" decodes) cmd=$(cmd_bits "$GPU")"
  echo "journal devices=$(jq '.devices // {} | length' "$PT_JOURNAL" 2>/dev/null || echo 0)"
}
assert_unchanged() { assert_eq "state after $1" "$boot" "$(hook_state)"; }

# assert_recipe_logged GPU AUDIO: a hook's output has `pt-bind recover` on
# GPU and its audio function with exit status 0, and in its lines every step
# of the recovery recipe, each with exit status 0.
assert_recipe_logged() {
  local step
  assert_out_has "pt-bind recover --reset-method bus $1 $2 -> exit 0"
  for step in reset attach drm-wait vgaarb console drm-check; do
    assert_out_has "recover $1: $step exited 0 after"
  done
  assert_out_has "recover $1 $2: done"
}

# ------------------------------------------------------------ driver doubles
# The doubles topology (`# pt-vm: topology=doubles`) ships the modules of
# tests/vm/doubles to /pt-vm/doubles: ptd_nvidia (pci driver "nvidia"),
# ptd_amdgpu ("amdgpu") and ptd_hda ("ptd_hda_intel"). See README.md,
# "Driver doubles". The helpers below read the doubles' own state; each
# fails with what it expected when the function is not on the double.
DOUBLES_DIR=/pt-vm/doubles
NV_DRIVER=nvidia
AMD_DRIVER=amdgpu
HDA_DRIVER=ptd_hda_intel

# load_doubles: insmod the three doubles (once).
load_doubles() {
  [ -d "$DOUBLES_DIR" ] || fail "driver doubles in $DOUBLES_DIR" "the .ko files (use '# pt-vm: topology=doubles')" "no such directory"
  for _m in ptd_nvidia ptd_amdgpu ptd_hda; do
    grep -q "^$_m " /proc/modules && continue
    _o=$(insmod "$DOUBLES_DIR/$_m.ko" 2>&1) || fail "insmod $_m.ko" "loaded" "$_o; $(dmesg | tail -n 3)"
  done
}

# need_pci BDF WHAT: fails unless BDF names a PCI function.
need_pci() {
  [ -n "$1" ] && [ -e "/sys/bus/pci/devices/$(full_bdf "$1")" ] ||
    fail "$2: PCI function '$1'" "an existing function (e.g. 0000:01:00.0)" "no /sys/bus/pci/devices/$(full_bdf "$1")"
}

# need_driver BDF DRIVER WHAT: fails unless BDF is bound to DRIVER.
need_driver() {
  need_pci "$1" "$3"
  [ "$(driver_of "$1")" = "$2" ] ||
    fail "$3: driver of $(full_bdf "$1")" "$2" "$(driver_of "$1")"
}

# rebind BDF DRIVER: driver_override DRIVER ("" clears it), unbind, probe;
# what the admin's gpu_ptd_w / gpu_pta_w did by hand. The probe's failure is
# the kernel's (the driver refused the device); this does not check it.
rebind() {
  _b=$(full_bdf "$1")
  need_pci "$_b" "rebind"
  if [ -n "$2" ]; then echo "$2" >"/sys/bus/pci/devices/$_b/driver_override"; else echo >"/sys/bus/pci/devices/$_b/driver_override"; fi
  [ -e "/sys/bus/pci/devices/$_b/driver" ] && echo "$_b" >"/sys/bus/pci/devices/$_b/driver/unbind"
  echo "$_b" >/sys/bus/pci/drivers_probe 2>/dev/null
  return 0
}

# doubles_setup: the host as it boots with nvidia and snd_hda_intel. Both
# functions leave the guest's real drivers (snd_hda_intel is unloaded), the
# slot gets a bus reset (power-on state: virtio-pci and snd_hda_intel left
# their registers programmed), then 01:00.0 goes to the nvidia double by
# driver_override and 01:00.1 to the audio double by its ID table. Sets
# GPU_DRIVER and AUD_DRIVER for assert_attached and friends.
doubles_setup() {
  load_doubles
  for _b in $GPU $AUD; do
    [ -e "/sys/bus/pci/devices/$_b/driver" ] && echo "$_b" >"/sys/bus/pci/devices/$_b/driver/unbind"
  done
  grep -q "^snd_hda_intel " /proc/modules && rmmod snd_hda_intel
  grep -q '^snd_hda_intel ' /proc/modules && fail "unloading snd_hda_intel" "gone" "still loaded"
  _o=$(pt-reset --method bus "$GPU" 2>&1) || fail "power-on state: pt-reset --method bus $GPU" "exit 0" "$_o"
  rebind "$GPU" "$NV_DRIVER"
  echo "$AUD" >/sys/bus/pci/drivers_probe 2>/dev/null
  GPU_DRIVER=$NV_DRIVER AUD_DRIVER=$HDA_DRIVER
  need_driver "$GPU" "$NV_DRIVER" "doubles_setup"
  need_driver "$AUD" "$HDA_DRIVER" "doubles_setup"
}

# nv_dirty BDF: 1 while the GPU holds a VM's state, 0 when clean (the
# nvidia double's ptd_dirty attribute: virtio device_status != 0).
nv_dirty() {
  need_driver "$1" "$NV_DRIVER" "nv_dirty"
  cat "/sys/bus/pci/devices/$(full_bdf "$1")/ptd_dirty"
}

# nv_fan BDF: "pwm1=N fan1=N" from the double's hwmon (255/3300 dirty,
# 100/1290 clean).
nv_fan() {
  need_driver "$1" "$NV_DRIVER" "nv_fan"
  for _h in "/sys/bus/pci/devices/$(full_bdf "$1")"/hwmon/hwmon*; do
    [ -r "$_h/pwm1" ] || continue
    echo "pwm1=$(cat "$_h/pwm1") fan1=$(cat "$_h/fan1_input")"
    return 0
  done
  fail "nv_fan: hwmon of $1" "a hwmon device with pwm1" "$(ls "/sys/bus/pci/devices/$(full_bdf "$1")/hwmon" 2>&1)"
}

# nv_node BDF: /dev/nvidiaN, from the "Device Minor:" line of
# /proc/driver/nvidia/gpus/BDF/information (what pt reads too).
nv_node() {
  need_driver "$1" "$NV_DRIVER" "nv_node"
  _i=/proc/driver/nvidia/gpus/$(full_bdf "$1")/information
  [ -r "$_i" ] || fail "nv_node: $_i" "readable" "missing"
  _n=$(sed -n 's/^Device Minor:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$_i")
  [ -n "$_n" ] || fail "nv_node: Device Minor in $_i" "a number" "$(cat "$_i")"
  echo "/dev/nvidia$_n"
}

# nv_query BDF SECONDS: the nvidia-smi stand-in under `timeout SECONDS`;
# sets NVQ_RC (0 answered; 124 or 143: still blocked when the time ran out)
# and NVQ_OUT.
nv_query() {
  case $2 in '' | *[!0-9]*) fail "nv_query: seconds" "a whole number" "'$2'" ;; esac
  _node=$(nv_node "$1")
  if NVQ_OUT=$(timeout "$2" pt-vm-nvquery "$_node" 2>&1); then NVQ_RC=0; else NVQ_RC=$?; fi
  echo "   pt-vm-nvquery $_node (timeout $2 s) -> $NVQ_RC ${NVQ_OUT}"
}

# assert_query_hangs BDF / assert_query_answers BDF: the query ioctl blocks
# for 3 s (killed by timeout) / answers within 10 s with dirty=0.
assert_query_hangs() {
  nv_query "$1" 3
  case $NVQ_RC in 124 | 143) ;; *) fail "query ioctl on a dirty GPU" "blocked until timeout (124/143)" "exit $NVQ_RC: $NVQ_OUT" ;; esac
}
assert_query_answers() {
  nv_query "$1" 10
  [ "$NVQ_RC" = 0 ] || fail "query ioctl on $1" "an answer (exit 0)" "exit $NVQ_RC: $NVQ_OUT"
  assert_contains "query answer" "dirty=0" "$NVQ_OUT"
}

# hda_failed_probes: probes the audio double refused (a controller a VM left).
hda_failed_probes() {
  _f=/sys/module/ptd_hda/parameters/failed_probes
  [ -r "$_f" ] || fail "hda_failed_probes: $_f" "readable (ptd_hda loaded)" "missing"
  cat "$_f"
}

# doubles_state: one line of what the origin story is about.
doubles_state() {
  _g=$(full_bdf "$GPU")
  _d=-
  _f=-
  if [ "$(driver_of "$_g")" = "$NV_DRIVER" ]; then
    _d=$(nv_dirty "$_g")
    _f=$(nv_fan "$_g" | tr ' ' ',')
  fi
  echo "gpu=$(driver_of "$_g") dirty=$_d fan=$_f decodes=$(arb_field "$_g" decodes) audio=$(driver_of "$AUD") hda_failed_probes=$(hda_failed_probes)"
}

# vm_uses BDF...: the VM stand-in uses each function through VFIO in turn and
# leaves its device state dirty (pt-vm-standin --dirty), killed like the
# origin story's `qm stop` (--no-d3: no D3hot); the function must be on
# vfio-pci.
vm_uses() {
  for _b in "$@"; do
    _b=$(full_bdf "$_b")
    need_driver "$_b" vfio-pci "vm_uses"
    _o=$(pt-vm-standin "$_b" --dirty --no-d3 2>&1) || fail "VM stand-in on $_b" "exit 0" "$_o"
    echo "   VM stand-in on $_b: $_o"
  done
}

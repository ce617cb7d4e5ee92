# pt-vm: topology=console
# status-cycle.sh: issue 15's front command on a real kernel. `pt status
# --json` agrees with the raw kernel state (driver link, driver_override,
# IOMMU group and /dev/vfio node, PMCSR, command register, the arbiter's
# decodes and owns, the fbcon vtconsole's bind, the DRM card) at boot, after
# pt-console release + pt-bind detach, and after the recovery recipe run by
# `pt recover`, which also prints the state compared before and after and
# logs the state at each step to syslog (busybox syslogd at /dev/log);
# names from the host's pci.ids; a
# snapshot before the cycle and one after it are the same (`pt diff` exit
# 0); an override left set and changed arbiter decodes make `pt diff` exit
# 1 naming the field; `pt status` writes nothing (no sysfs write, the
# kernel's state the same before and after). Its warnings agree with the
# kernel: the ACS of the GPU's root port read raw from config space decides
# whether an acs warning is there, the machine has IOMMU groups and vfio-pci
# (no no-iommu, no no-vfio-pci), and a user without CAP_SYS_ADMIN, to whom
# sysfs shows 64 bytes of config space, gets config-unreadable for each
# function, acs-unknown for the root port, and the same warnings as lines.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
wait_for "pt-drm check $gpu >/dev/null 2>&1" 20 || fail "pt-drm check at boot" 0 "$(pt-drm check "$gpu" 2>&1)"

# or_null V: V as pt's JSON has it ("none" and "(null)" are null).
# check_status WHEN: every compared field of both functions against sysfs,
# config space and the arbiter, read raw by lib.sh.
check_status() {
  say "pt status $1"
  expect_json 0 pt --json status "$SLOT"
  assert_json "$1: both functions, slot first" '[.functions[].bdf] == [$g, $a]' --arg g "$gpu" --arg a "$aud"
  for _d in $gpu $aud; do
    _f=".functions[] | select(.bdf == \$d)"
    assert_json "$1: $_d driver" "$_f | (.driver // \"none\") == \$v" --arg d "$_d" --arg v "$(driver_of "$_d")"
    assert_json "$1: $_d driver_override" "$_f | (.driver_override // \"(null)\") == \$v" \
      --arg d "$_d" --arg v "$(override_of "$_d")"
    assert_json "$1: $_d iommu group" "$_f | (.iommu_group | tostring) == \$v" --arg d "$_d" --arg v "$(group_of "$_d")"
    _node=none
    [ -e "/dev/vfio/$(group_of "$_d")" ] && _node="/dev/vfio/$(group_of "$_d")"
    assert_json "$1: $_d vfio node" "$_f | (.vfio_node // \"none\") == \$v" --arg d "$_d" --arg v "$_node"
    assert_json "$1: $_d PMCSR" "$_f | (.power.config_state // \"-\") == \$v" --arg d "$_d" --arg v "$(pm_state "$_d")"
    assert_json "$1: $_d command register" "$_f | .command.value == \$v" --arg d "$_d" --arg v "$(cmd_reg "$_d")"
    _card=$(drm_card_of "$_d")
    assert_json "$1: $_d DRM card" "$_f | (.drm.node // \"\") == \$v" --arg d "$_d" --arg v "$_card"
  done
  _gf=".functions[] | select(.bdf == \$d)"
  assert_json "$1: decodes of $gpu" "$_gf | .vga.decodes == \$v" --arg d "$gpu" --arg v "$(arb_field "$gpu" decodes)"
  assert_json "$1: owns of $gpu" "$_gf | .vga.owns == \$v" --arg d "$gpu" --arg v "$(arb_field "$gpu" owns)"
  assert_json "$1: no arbiter record for the audio function" "$_gf | .vga == null" --arg d "$aud"
  _fb=$(vtcon_bind "frame buffer device")
  assert_json "$1: fbcon vtconsole bind" \
    '[.vtconsoles[] | select(.name == "frame buffer device") | (if .bound then "1" else "0" end)] == [$v]' --arg v "$_fb"
}

check_status "at boot"
assert_json "at boot: the GPU is the boot VGA" '.functions[0].boot_vga == true'
assert_json "at boot: the DRM card reads" '.functions[0].drm.kms == "ok" and .functions[0].drm.verdict == "healthy"'
assert_json "at boot: GPU names from pci.ids" '.functions[0] | .vendor_name == "Red Hat, Inc." and .device_name == "Virtio 1.0 GPU" and .class_name == "VGA compatible controller"'
assert_json "at boot: audio names from pci.ids" '.functions[1] | .vendor_name == "Intel Corporation" and .device_name == "82801I (ICH9 Family) HD Audio Controller"'
# Without jq in the guest the names are still checked as text.
assert_out_has '"vendor_name": "Red Hat, Inc."'
assert_out_has '"device_name": "82801I (ICH9 Family) HD Audio Controller"'
run_cmd pt status "$SLOT"
[ "$RC" = 0 ] || fail "pt status" 0 "$RC"
assert_out_has "Red Hat, Inc. Virtio 1.0 GPU"
assert_out_has "Intel Corporation 82801I (ICH9 Family) HD Audio Controller"

# acs_at BRIDGE: offset of BRIDGE's ACS extended capability, or "".
acs_at() {
  _x=256 _guard=960
  while [ "$_x" -ge 256 ] && [ $_guard -gt 0 ]; do
    _h=$(cfg_read "$1" "$_x" 4)
    [ -n "$_h" ] && [ "$_h" != 0 ] && [ "$_h" != 4294967295 ] || break
    if [ $((_h & 0xffff)) = 13 ]; then echo "$_x"; return; fi
    _x=$(((_h >> 20) & 0xffc))
    _guard=$((_guard - 1))
  done
}

# acs_expected BRIDGE: what pt must say of BRIDGE's ACS, from its config
# space read raw: "none" (no ACS capability), "ok" (SV RR CR UF enabled
# where implemented, as the kernel's pci_acs_enabled asks) or "off".
acs_expected() {
  _acs=$(acs_at "$1")
  if [ -z "$_acs" ]; then echo none; return; fi
  _cap=$(cfg_read "$1" $((_acs + 4)) 2)
  _ctl=$(cfg_read "$1" $((_acs + 6)) 2)
  echo "   $1: ACS at $(printf 0x%x "$_acs"), capability $(printf 0x%04x "$_cap"), control $(printf 0x%04x "$_ctl")" >&2
  if [ $((0x1d & _cap & ~_ctl)) = 0 ]; then echo ok; else echo off; fi
}

# check_acs: pt's acs warning is what the root port's raw ACS says.
check_acs() {
  acs=$(acs_expected "$rp")
  echo "   root port $rp: ACS $acs (raw config space)"
  expect_json 0 pt --json status "$SLOT"
  case $acs in
    ok) assert_json "no acs warning for $rp, whose ACS is enabled" '[.warnings[] | select(.kind == "acs" or .kind == "acs-unknown")] == []' ;;
    none) assert_json "acs warning: $rp has no ACS" \
      '[.warnings[] | select(.kind == "acs") | [.device, (.message | startswith($rp + " is a root port without ACS: "))]] == [[$g, true]]' \
      --arg rp "$rp" --arg g "$gpu" ;;
    off) assert_json "acs warning: $rp has ACS disabled" \
      '[.warnings[] | select(.kind == "acs") | [.device, .message]] == [[$g, $rp + " is a root port with ACS " + $bits + " (disabled): the functions below it can reach each other without the IOMMU, which is why the IOMMU group is large (unless a kernel quirk vouches for it)"]]' \
      --arg rp "$rp" --arg g "$gpu" --arg bits "$1" ;;
  esac
}

say "warnings against the kernel: the root port's ACS, IOMMU groups, vfio-pci"
rp=$(parent_of "$gpu")
[ -n "$rp" ] || fail "the GPU's root port" "a bridge above $gpu" "none"
check_acs
[ -n "$(ls /sys/kernel/iommu_groups)" ] || fail "IOMMU groups in the guest" "some" "none"
assert_json "no no-iommu warning: the kernel has IOMMU groups" '[.warnings[] | select(.kind == "no-iommu")] == []'
if [ -d /sys/bus/pci/drivers/vfio-pci ] || modinfo vfio-pci >/dev/null 2>&1; then
  assert_json "no no-vfio-pci warning: vfio-pci is there" '[.warnings[] | select(.kind == "no-vfio-pci")] == []'
fi
assert_json "as root: no config warning" '[.warnings[] | select(.kind == "config-unreadable" or .kind == "stuck-d3")] == []'
run_cmd pt status "$SLOT"
if [ "$acs" = ok ]; then assert_out_lacks "warning:"; fi
at=$(acs_at "$rp")
if [ -n "$at" ] && [ "$acs" = ok ] && [ $(($(cfg_read "$rp" $((at + 4)) 2) & 0x14)) = 20 ]; then
  say "injected: the root port's ACS RR and UF controls off (the kernel set them at boot)"
  ctl=$(cfg_read "$rp" $((at + 6)))
  cfg_write8 "$rp" $((at + 6)) $((ctl & ~0x14 & 0xff))
  check_acs "RR- UF-"
  [ "$acs" = off ] || fail "ACS control of $rp after the write" "RR and UF off" "$acs"
  run_cmd pt status "$SLOT"
  assert_out_has "warning: $gpu: $rp is a root port with ACS RR- UF- (disabled): "
  cfg_write8 "$rp" $((at + 6)) "$ctl"
  check_acs
  [ "$acs" = ok ] || fail "ACS control of $rp restored" ok "$acs"
fi

say "as a user: sysfs shows 64 bytes of config space, status says so"
grep -q '^ptuser:' /etc/passwd || echo "ptuser:x:1000:1000:pt test:/tmp:/bin/sh" >>/etc/passwd
size=$(su ptuser -c "wc -c </sys/bus/pci/devices/$gpu/config" | tr -d ' ')
echo "   $gpu config as ptuser: $size bytes (as root: $(wc -c <"/sys/bus/pci/devices/$gpu/config" | tr -d ' '))"
assert_eq "config space bytes a user reads" 64 "$size"
expect_json 0 su ptuser -c "pt --json status $SLOT"
short="capabilities unreadable: config space is 64 bytes (run as root)"
assert_json "as a user: config-unreadable for each function, in order" \
  '[.warnings[] | select(.kind == "config-unreadable") | [.device, .message]] == [[$g, $m], [$a, $m]]' \
  --arg g "$gpu" --arg a "$aud" --arg m "$short"
assert_json "as a user: the root port's ACS is unknown, for the same reason" \
  '[.warnings[] | select(.kind == "acs-unknown") | [.device, .message]] == [[$g, $rp + ": ACS unknown: " + $m]]' \
  --arg g "$gpu" --arg rp "$rp" --arg m "$short"
assert_json "as a user: the capabilities are not decoded" '[.functions[] | .power.config_state] == [null, null]'
assert_out_has "\"message\": \"$short\""
run_cmd su ptuser -c "pt status $SLOT"
[ "$RC" = 0 ] || fail "pt status as ptuser" 0 "$RC"
assert_out_has "warning: $gpu: $short"
assert_out_has "warning: $aud: $short"
assert_out_has "warning: $gpu: $rp: ACS unknown: $short"

say "pt status is read-only: -v shows no write, the state is the same"
before=$(cycle_state)
expect_rc 0 pt -v status "$SLOT"
assert_lacks "pt -v status" "write" "$OUT"
assert_eq "state after pt status" "$before" "$(cycle_state)"

say "timing: pt status on the real kernel"
t0=$(now_ns)
for _i in 1 2 3 4 5; do pt --json status "$SLOT" >/dev/null || fail "pt status" 0 "$?"; done
echo "   5 runs: $(elapsed_ms "$t0") ms"

expect_rc 0 pt snapshot "$SLOT" -o /tmp/boot.json
expect_rc 0 pt diff /tmp/boot.json
assert_out_has "no change"

say "release the console, detach GPU+audio"
expect_rc 0 pt-console release "$gpu"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
check_status "after detach"
assert_json "after detach: vfio node" '.functions[0].vfio_node == $n' --arg n "/dev/vfio/$(group_of "$gpu")"
assert_json "after detach: the journal's record" '.functions[0].journal.to == "vfio-pci" and .functions[1].journal.to == "vfio-pci"'
assert_json "after detach: the arbiter record" '.functions[0].journal_vga.decodes != null'
expect_rc 0 pt snapshot "$SLOT" -o /tmp/detached.json
expect_rc 1 pt diff /tmp/boot.json /tmp/detached.json
assert_out_has "$gpu driver: $GPU_DRIVER -> vfio-pci"
assert_out_has "$aud driver: $AUD_DRIVER -> vfio-pci"
assert_out_has "$gpu driver_override: (none) -> vfio-pci"

say "the recovery recipe, by pt recover (recover::run, as pt-bind recover), logged to syslog"
# busybox's syslogd stands in for journald at /dev/log.
syslogd -n -O /tmp/messages &
syslogd_pid=$!
wait_for "[ -S /dev/log ]" 10 || fail "syslogd's /dev/log" "a socket" "$(ls -l /dev/log 2>&1)"
expect_rc 0 pt recover "$gpu"
for _s in reset attach drm-wait vgaarb console drm-check; do
  assert_out_has "recover $gpu: $_s exited 0 after"
done
# The state compared before and after, field by field.
assert_out_has "state changes:"
assert_out_has "  $gpu driver: vfio-pci -> $GPU_DRIVER"
assert_out_has "  $aud driver: vfio-pci -> $AUD_DRIVER"
assert_out_has "  $gpu driver_override: vfio-pci -> (none)"
wait_for "grep -q 'state after drm-check' /tmp/messages" 10 || true
kill "$syslogd_pid"
say "the state at each step, as syslogd received it"
grep "recover $gpu: state" /tmp/messages || fail "pt's lines in the system log" "the state at each step" "$(cat /tmp/messages)"
log=$(cat /tmp/messages)
assert_contains "syslog" "pt[" "$log"
assert_contains "syslog" "recover $gpu: state before: $gpu vfio-pci override=vfio-pci" "$log"
assert_contains "syslog" "recover $gpu: state after reset (ok): " "$log"
attach_line=$(grep "recover $gpu: state after attach (ok): " /tmp/messages)
assert_contains "syslog: the attach's changes" "$gpu driver: vfio-pci -> $GPU_DRIVER" "$attach_line"
assert_contains "syslog: the attach's changes" "$aud driver: vfio-pci -> $AUD_DRIVER" "$attach_line"
for _s in drm-wait vgaarb console drm-check; do
  assert_contains "syslog" "recover $gpu: state after $_s (ok): " "$log"
done
assert_attached
check_status "after the recipe"
assert_json "after the recipe: no journal record" '[.functions[] | .journal, .journal_vga] == [null, null, null, null]'

say "a clean cycle: pt diff against the boot snapshot is empty"
expect_rc 0 pt snapshot "$SLOT" -o /tmp/after.json
expect_rc 0 pt diff /tmp/boot.json /tmp/after.json
assert_out_has "no change"
expect_json 0 pt --json diff /tmp/boot.json
assert_json "diff --json" '.same == true and .changes == []'

say "injected: an override left set on the audio function"
echo vfio-pci >"/sys/bus/pci/devices/$aud/driver_override"
expect_rc 1 pt diff /tmp/boot.json
assert_out_has "$aud driver_override: (none) -> vfio-pci"
expect_json 1 pt --json diff /tmp/boot.json
assert_json "the changed field" '.changes == [{"function": $a, "field": "driver_override", "before": "(none)", "after": "vfio-pci"}]' --arg a "$aud"
echo >"/sys/bus/pci/devices/$aud/driver_override"

say "injected: the arbiter's decodes changed"
expect_rc 0 pt-vgaarb decodes "$gpu" none
expect_rc 1 pt diff /tmp/boot.json
assert_out_has "$gpu vga.decodes: io+mem -> none"
check_status "with decodes none"
expect_rc 0 pt-vgaarb decodes "$gpu" io+mem
expect_rc 0 pt diff /tmp/boot.json

say "a snapshot that is not one is refused with exit 2"
echo '{"format": 1, "device": "01:00"}' >/tmp/bad.json
expect_rc 2 pt diff /tmp/bad.json
assert_out_has "/tmp/bad.json"
pass

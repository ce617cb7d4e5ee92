#!/usr/bin/env bash
# cycle.sh (ctest fleet.cycle): Ansible drives pt on two booted Debian guests
# over ssh (tests/vm/pt-vm-system fleet runs this on the host with INVENTORY,
# SSH_CONFIG, FLEET_HOSTS and FLEET_DIR set). With the collection pt.passthrough
# (contrib/ansible):
#  1. cycle.yml on both: detach, a VM stand-in, recover, the facts asserted;
#     sysfs read over plain ssh before and after.
#  2. state.yml pt_state=vfio twice: the first run changes both hosts, the
#     second reports changed=0 for each (idempotence).
#  3. state.yml pt_state=host --check: reports what it would change, and
#     every function's driver, override and power state in the guests'
#     sysfs is the same after as before.
#  4. state.yml pt_state=host with a slot that does not exist on host2 only:
#     host2 fails with pt-bind's message and exit status, host1 is returned
#     to its host drivers and reported ok in the recap.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../../.." && pwd)
: "${INVENTORY:?run by pt-vm-system fleet}" "${SSH_CONFIG:?}" "${FLEET_HOSTS:?}" "${FLEET_DIR:?}"
export ANSIBLE_COLLECTIONS_PATH=${PT_ANSIBLE_COLLECTIONS:-$SRC/contrib/ansible}
[[ -d $ANSIBLE_COLLECTIONS_PATH/ansible_collections/pt/passthrough ]] ||
  { echo "cycle.sh: no collection pt.passthrough under $ANSIBLE_COLLECTIONS_PATH" >&2; exit 125; }
GPU=0000:01:00.0 AUD=0000:01:00.1
read -r -a HOSTS <<<"$FLEET_HOSTS"
((${#HOSTS[@]} >= 2)) || { echo "cycle.sh: needs two hosts, got '$FLEET_HOSTS'" >&2; exit 125; }
H1=${HOSTS[0]} H2=${HOSTS[1]}

say() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n  expected: %s\n  got: %s\n' "$1" "$2" "$3"
  exit 1
}
assert_eq() { [[ $2 == "$3" ]] || fail "$1" "$2" "$3"; }

guest() { ssh -F "$SSH_CONFIG" "$1" "$2" </dev/null; }

# Raw sysfs, not pt: each function's driver, driver_override and power state,
# read with two commands (every fork is slow under TCG) and put in one line
# per function: "BDF driver=D override=O power=P".
sysfs_state() {
  guest "$1" 'cd /sys/bus/pci/devices && ls -l */driver; grep -H . */driver_override */power_state' |
    awk '/ -> / { split($(NF - 2), p, "/"); n = split($NF, q, "/"); drv[p[1]] = q[n]; dev[p[1]] = 1; next }
      { s = index($0, "/"); d = substr($0, 1, s - 1); r = substr($0, s + 1); j = index(r, ":")
        dev[d] = 1; val[d, substr(r, 1, j - 1)] = substr(r, j + 1) }
      END { for (d in dev) printf "%s driver=%s override=%s power=%s\n", d, drv[d], val[d, "driver_override"], val[d, "power_state"] }' |
    sort
}
# drivers HOST: "GPU's AUD's" drivers, in one ssh.
drivers() { sysfs_state "$1" | awk -v g="$GPU" -v a="$AUD" '{ sub("driver=", "", $2); d[$1] = $2 } END { print d[g], d[a] }'; }

# [INV=FILE] play NAME ARGS...: ansible-playbook with the JSON callback into
# FLEET_DIR/NAME.json; prints each task's result per host and the recap.
play() {
  local name=$1 rc=0 t0
  shift
  t0=$(date +%s)
  echo "+ ansible-playbook -i ${INV:-\$INVENTORY} $*"
  ANSIBLE_STDOUT_CALLBACK=json ansible-playbook -i "${INV:-$INVENTORY}" "$@" >"$FLEET_DIR/$name.json" 2>"$FLEET_DIR/$name.err" || rc=$?
  jq -r '.plays[].tasks[] | .task.name as $t | .hosts | to_entries[] |
    "  \(.key): \($t): \(if .value.failed then "FAILED (rc \(.value.rc // "-")): \(.value.msg)"
      elif .value.changed then "changed" else "ok" end)"' "$FLEET_DIR/$name.json" 2>/dev/null ||
    { cat "$FLEET_DIR/$name.json" "$FLEET_DIR/$name.err"; fail "$name" "ansible-playbook's JSON" "none (exit $rc)"; }
  jq -r '.stats | to_entries[] | "  recap \(.key): ok=\(.value.ok) changed=\(.value.changed) failed=\(.value.failures) unreachable=\(.value.unreachable)"' "$FLEET_DIR/$name.json"
  echo "  exit $rc in $(($(date +%s) - t0))s"
  LAST=$name LAST_RC=$rc
}
recap() { jq -r --arg h "$1" --arg f "$2" '.stats[$h][$f]' "$FLEET_DIR/$LAST.json"; }

start=$(date +%s.%N)
say "the guests as booted (sysfs over ssh)"
for h in "${HOSTS[@]}"; do
  assert_eq "$h: drivers of $GPU $AUD at boot" "virtio-pci snd_hda_intel" "$(drivers "$h")"
done
echo "  both: $GPU virtio-pci, $AUD snd_hda_intel"

say "1. the cycle on both hosts: detach, the VM stand-in, recover, facts"
play cycle "$HERE/cycle.yml"
assert_eq "cycle.yml's exit status" 0 "$LAST_RC"
for h in "${HOSTS[@]}"; do
  assert_eq "$h: failed tasks in cycle.yml" 0 "$(recap "$h" failures)"
  assert_eq "$h: drivers of $GPU $AUD after the cycle (sysfs)" "virtio-pci snd_hda_intel" "$(drivers "$h")"
  # The stand-in prints the config state it left, one line per function.
  assert_eq "$h: the stand-in's use reported" 2 \
    "$(jq -r --arg h "$h" '.plays[].tasks[] | select(.task.name | startswith("A VM uses")) | .hosts[$h].stdout' "$FLEET_DIR/$LAST.json" | grep -c 'command=0x')"
done

say "2. state vfio, twice: the second run changes nothing"
play vfio-1 "$HERE/state.yml" -e pt_state=vfio
assert_eq "state.yml vfio's exit status" 0 "$LAST_RC"
for h in "${HOSTS[@]}"; do
  assert_eq "$h: changed in the first run" 1 "$(recap "$h" changed)"
  assert_eq "$h: drivers of $GPU $AUD (sysfs)" "vfio-pci vfio-pci" "$(drivers "$h")"
done
play vfio-2 "$HERE/state.yml" -e pt_state=vfio
assert_eq "state.yml vfio's exit status, again" 0 "$LAST_RC"
for h in "${HOSTS[@]}"; do
  assert_eq "$h: changed in the second run" 0 "$(recap "$h" changed)"
  assert_eq "$h: ok in the second run" 1 "$(recap "$h" ok)"
done

say "3. state host in check mode: a plan, and sysfs as it was"
for h in "${HOSTS[@]}"; do sysfs_state "$h" >"$FLEET_DIR/$h.before-check"; done
play check "$HERE/state.yml" -e pt_state=host --check
assert_eq "state.yml host --check's exit status" 0 "$LAST_RC"
for h in "${HOSTS[@]}"; do
  sysfs_state "$h" >"$FLEET_DIR/$h.after-check"
  assert_eq "$h: changed reported by --check (it would attach)" 1 "$(recap "$h" changed)"
  diff -u "$FLEET_DIR/$h.before-check" "$FLEET_DIR/$h.after-check" ||
    fail "$h: sysfs after --check" "the same as before" "the diff above"
  grep -c . "$FLEET_DIR/$h.after-check" | sed "s/^/  $h: the same after --check, functions: /"
  assert_eq "$h: drivers of $GPU $AUD after --check (sysfs)" "vfio-pci vfio-pci" "$(awk -v g="$GPU" -v a="$AUD" '{ sub("driver=", "", $2); d[$1] = $2 } END { print d[g], d[a] }' "$FLEET_DIR/$h.after-check")"
done

say "4. state host with a failure injected on $H2 (a slot it does not have)"
inv="$FLEET_DIR/inventory-broken.ini"
sed "s/^$H2 .*/& pt_slot=07:00/" "$INVENTORY" >"$inv"
grep "^$H2 " "$inv" | sed 's/^/  /'
INV=$inv play broken "$HERE/state.yml" -e pt_state=host
[[ $LAST_RC != 0 ]] || fail "ansible-playbook's exit status with $H2 failing" "not 0" "0"
assert_eq "$H1: failed" 0 "$(recap "$H1" failures)"
assert_eq "$H1: changed" 1 "$(recap "$H1" changed)"
assert_eq "$H2: failed" 1 "$(recap "$H2" failures)"
h2=$(jq -c --arg h "$H2" '[.plays[].tasks[] | .hosts[$h] | select(.failed)] | first' "$FLEET_DIR/$LAST.json")
echo "  $H2's failure: $(jq -c '{msg, rc, cmd}' <<<"$h2")"
# pt-bind: a device that is not there is exit 1, nothing changed (pt-bind(8)).
assert_eq "$H2: pt's exit status in the task's result" 1 "$(jq -r .rc <<<"$h2")"
grep -q '07:00' <<<"$(jq -r .msg <<<"$h2")" || fail "$H2: pt's message" "one naming 07:00" "$(jq -r .msg <<<"$h2")"
assert_eq "$H1: drivers of $GPU $AUD (sysfs)" "virtio-pci snd_hda_intel" "$(drivers "$H1")"
assert_eq "$H2: drivers of $GPU $AUD, untouched (sysfs)" "vfio-pci vfio-pci" "$(drivers "$H2")"

echo
echo "PASS: fleet cycle on ${HOSTS[*]} in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s of playbooks"

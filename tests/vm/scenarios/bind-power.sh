# bind-power.sh: pt.conf's power policy (power_control, d3cold_allowed) on a
# real kernel. Detach writes it after vfio-pci bound (vfio-pci's probe allows
# runtime PM, so "on" read back proves the order), journals the values it
# replaced, and attach, a rollback and the undoing of an interrupted job
# (pt-bind recover) write them back; pt status and pt-bind show report them.
. /pt-vm/lib.sh

G=$(full_bdf "$GPU")
A=$(full_bdf "$AUD")
ctl() { cat "/sys/bus/pci/devices/$(full_bdf "$1")/power/control"; }
d3c() { cat "/sys/bus/pci/devices/$(full_bdf "$1")/d3cold_allowed"; }
power_state() { echo "$GPU $(ctl "$GPU") $(d3c "$GPU"); $AUD $(ctl "$AUD") $(d3c "$AUD")"; }
assert_host_power() { assert_eq "power of both functions $1" "$GPU auto 1; $AUD auto 1" "$(power_state)"; }
assert_policy_power() { assert_eq "power of both functions $1" "$GPU on 0; $AUD on 0" "$(power_state)"; }

assert_attached
# What the host drivers leave is the state to restore: runtime PM allowed,
# D3cold allowed (the policy changes both).
for f in "$G" "$A"; do
  [ -w "/sys/bus/pci/devices/$f/power/control" ] || skip "no writable power/control for $f (CONFIG_PM)"
  echo auto >"/sys/bus/pci/devices/$f/power/control"
  echo 1 >"/sys/bus/pci/devices/$f/d3cold_allowed"
done
assert_host_power "before"
mkdir -p /etc/pt
cat >/etc/pt/pt.conf <<CONF
[device.gpu]
bdf = "$G"
companions = ["$A"]
power_control = "on"
d3cold_allowed = false
recover = ["attach"]
CONF
chmod 0644 /etc/pt/pt.conf

say "status and show report runtime PM before the detach"
expect_json 0 pt status --json "$SLOT"
assert_json "GPU d3cold_allowed in status" \
  '.functions[] | select(.bdf == $g) | .power.d3cold_allowed == true and .power.vfio_disable_idle_d3 == null' \
  --arg g "$G"
expect_json 0 pt-bind show --json "$G"
assert_json "GPU power in show" '.power.control == "auto" and .power.d3cold_allowed == true and .power.stuck == null'

say "dry run: the planned power writes, with the values they replace; nothing written"
expect_rc 0 pt-bind --dry-run detach "$SLOT"
assert_out_has "write /sys/bus/pci/devices/$G/power/control \"on\" (now \"auto\"), then read it back"
assert_out_has "write /sys/bus/pci/devices/$A/d3cold_allowed \"0\" (now \"1\"), then read it back"
assert_attached
assert_host_power "after the dry run"

say "detach: the policy is applied after vfio-pci binds, read back and journaled"
expect_rc 0 pt-bind detach "$SLOT"
assert_detached
assert_policy_power "while detached"
assert_out_has "$G: power/control = on, d3cold_allowed = 0 (pt.conf power policy, read back)"
for f in "$G" "$A"; do
  assert_eq "journaled power of $f" '{"d3cold_allowed":"1","power/control":"auto"}' \
    "$(jq -c --arg d "$f" '.devices[$d].power' "$PT_JOURNAL")"
done
expect_json 0 pt status --json "$SLOT"
assert_json "status while detached" \
  '.functions[] | select(.bdf == $g) | .power.runtime_control == "on" and .power.d3cold_allowed == false and (.power.vfio_disable_idle_d3 | type) == "boolean"' \
  --arg g "$G"
want_idle=$(case $(cat /sys/module/vfio_pci/parameters/disable_idle_d3) in Y) echo true ;; *) echo false ;; esac)
expect_json 0 pt-bind show --json "$G"
assert_json "show while detached" ".power.vfio_disable_idle_d3 == $want_idle and .power.control == \"on\""

say "attach: the old values come back after the host drivers bound"
expect_rc 0 pt-bind attach "$SLOT"
assert_attached
assert_host_power "after attach"
assert_out_has "$G: d3cold_allowed = 1, power/control = auto (restored, read back)"

say "rollback: the GPU's d3cold_allowed write fails after the audio got its policy"
expect_rc 3 timeout 60 env LD_PRELOAD=/lib/pt-fault.so PT_FAULT_VERBOSE=1 \
  PT_FAULT="$G/d3cold_allowed=0:EIO@1" pt-bind detach "$SLOT"
assert_out_has "pt-fault: failing write to"
assert_out_has "$G/d3cold_allowed"
assert_out_has "Rolled back"
assert_attached
assert_host_power "after the rolled-back detach"

say "an attach that fails part-way puts the policy back on what it rolled back"
expect_rc 0 pt-bind detach "$SLOT"
assert_policy_power "detached again"
expect_rc 3 timeout 60 env LD_PRELOAD=/lib/pt-fault.so \
  PT_FAULT="/sys/bus/pci/drivers_probe=$A:EIO@1" pt-bind attach "$SLOT"
assert_detached
assert_policy_power "after the rolled-back attach"

say "an interrupted detach: pt-bind recover undoes it, power included"
# As a run killed after its writes leaves it: the job still in the journal.
jq --arg g "$G" --arg a "$A" '.job = {op: "detach", pid: 999999, started: 1, devices: [$a, $g]}' \
  "$PT_JOURNAL" >/tmp/j && cat /tmp/j >"$PT_JOURNAL"
expect_rc 0 pt-bind recover "$G"
assert_attached
assert_host_power "after recover"

say "a bad value: exit 2 naming the key, nothing written"
sed -i 's/power_control = "on"/power_control = "off"/' /etc/pt/pt.conf
expect_rc 2 pt-bind detach "$SLOT"
assert_out_has "device.gpu.power_control must be \"on\""
assert_attached
assert_host_power "after the refused pt.conf"
pass

# pt-vm: topology=console
# hook-proxmox.sh: contrib/proxmox/pt-hookscript called as Proxmox VE calls a
# hookscript (`VMID PHASE`), on the GPU that carries the console:
#   a broken hook config, an ambiguous resource mapping (mapping=), an unnamed
#   VM, the lock held elsewhere: a clear error (or nothing to do), nothing changed;
#   `100 pre-start` (hostpci0 of a fake /etc/pve/qemu-server/100.conf):
#   console released, GPU+audio on vfio-pci;
#   the VM stand-in leaves the GPU dirty (bus master, memory decode off, D3hot);
#   `100 post-stop`: drivers back, command register and decodes as at boot,
#   fbcon back on the GPU, `pt-drm check` 0, journal clean;
#   every step's line also in syslog (busybox syslogd on /dev/log).
. /pt-vm/lib.sh

HOOK=/pt-vm/files/pt-hookscript
CONF=/etc/pt/proxmox-hook.conf
gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
[ -x /bin/bash ] || fail "bash in the guest" "/bin/bash" "missing"

mkdir -p /etc/pt /etc/pve/qemu-server
cat >/etc/pve/qemu-server/100.conf <<EOF
boot: order=scsi0
cores: 4
hookscript: local:snippets/pt-hookscript
hostpci0: 0000:01:00,pcie=1,x-vga=1
machine: q35
memory: 8192
ostype: win10

[before-update]
hostpci0: 0000:07:00,pcie=1
snaptime: 1795464793
EOF
cat >/etc/pve/qemu-server/101.conf <<EOF
cores: 2
hostpci0: mapping=rtx4090,pcie=1
EOF

boot=$(hook_state)
say "at boot: $(echo "$boot" | tr '\n' ';')"
assert_vtcon_bind "frame buffer device" 1

say "phases that do nothing, without any configuration"
expect_rc 0 "$HOOK" 100 pre-start
assert_out_has "$CONF does not exist; nothing to do"
for phase in post-start pre-stop; do
  expect_rc 0 "$HOOK" 100 "$phase"
done
assert_unchanged "calls with nothing to do"

say "a broken configuration: file and line named, nothing changed"
printf '# pt hook\nvm 100 hostpci\nvm 102 zz:00\n' >"$CONF"
expect_rc 2 "$HOOK" 100 pre-start
assert_out_has "$CONF:3: 'zz:00' is not a PCI address"
printf 'vm 100 hostpci\nvms 101 hostpci\n' >"$CONF"
expect_rc 2 "$HOOK" 100 pre-start
assert_out_has "$CONF:2: unknown keyword 'vms'"
assert_unchanged "broken configurations"

say "a resource mapping with two entries for this node is refused, naming the hostpci line"
mkdir -p /etc/pve/mapping
node=$(uname -n)
printf 'rtx4090\n\tmap id=1af4:1050,iommugroup=4,node=%s,path=0000:01:00\n\tmap id=1af4:1050,iommugroup=9,node=%s,path=0000:09:00\n' \
  "${node%%.*}" "${node%%.*}" >/etc/pve/mapping/pci.cfg
printf 'vm 100 hostpci\nvm 101 hostpci\n' >"$CONF"
expect_rc 2 "$HOOK" 101 pre-start
assert_out_has "/etc/pve/qemu-server/101.conf:2: hostpci0 uses the resource mapping 'rtx4090', which has 2 entries for node"
assert_unchanged "the mapping refusal"

say "a VM the configuration does not name is left alone"
expect_rc 0 "$HOOK" 102 pre-start
assert_out_has "VM 102 is not named in $CONF; nothing to do"
expect_rc 0 "$HOOK" 102 post-stop
assert_unchanged "an unnamed VM"

say "the pt lock held elsewhere: exit 75 after lock-timeout, nothing changed"
printf 'vm 100 hostpci\nlock-timeout 1\n' >"$CONF"
mkdir -p -m 0700 /run/pt
flock /run/pt/lock sleep 30 &
holder=$!
wait_for "! flock -n /run/pt/lock true" 5 || fail "the test's lock holder" "holding /run/pt/lock" "not holding it"
expect_rc 75 "$HOOK" 100 pre-start
assert_out_has "another pt command holds /run/pt/lock"
kill "$holder"
wait "$holder" 2>/dev/null
assert_unchanged "a busy lock"

say "the log lines also reach syslog (here busybox syslogd on /dev/log)"
syslogd -n -O /tmp/syslog &
syslogd_pid=$!
wait_for "[ -S /dev/log ]" 5 || fail "busybox syslogd" "/dev/log" "no socket"

say "100 pre-start: the hostpci0 slot (not the snapshot's) detached, console released"
printf '# VM 100 passes its GPU slot through\nvm 100 hostpci\n' >"$CONF"
expect_rc 0 "$HOOK" 100 pre-start
assert_out_has "pt-console release $gpu -> exit 0"
assert_out_has "pt-bind detach $gpu $aud -> exit 0"
assert_out_lacks "07:00"
assert_detached
assert_vtcon_bind "frame buffer device" 0
[ -s /run/pt/hook-proxmox-100.devices ] || fail "the record of what pre-start detached" "/run/pt/hook-proxmox-100.devices" "missing"
expect_rc 0 "$HOOK" 100 post-start
assert_detached

say "the VM runs and leaves the GPU dirty"
expect_rc 0 pt-vm-standin "$gpu"
expect_rc 0 "$HOOK" 100 pre-stop
assert_detached

say "100 post-stop: the recovery recipe, each step logged with its exit status"
expect_rc 0 "$HOOK" 100 post-stop
assert_recipe_logged "$gpu" "$aud"
assert_attached
assert_unchanged "the whole cycle"
expect_rc 0 pt-drm check "$GPU"
[ ! -e /run/pt/hook-proxmox-100.devices ] || fail "the record after post-stop" "removed" "still there"
flock -n /run/pt/lock true || fail "the pt lock after the hook" "free" "held"
kill "$syslogd_pid"
for s in "100 pre-start: pt-bind detach $gpu $aud -> exit 0" "100 post-stop: pt-bind recover --reset-method bus $gpu $aud -> exit 0"; do
  assert_contains "syslog" "daemon.notice pt-hookscript: pt-hookscript $s" "$(cat /tmp/syslog)"
done
pass

# pt-vm: topology=console
# hook-libvirt.sh: contrib/libvirt/qemu installed as /etc/libvirt/hooks/qemu
# and called as libvirtd calls it (`DOMAIN OP SUB-OP -`, the domain XML on
# stdin), on the GPU that carries the console:
#   calls it does not act on return 0 at once, even with a broken config;
#   a broken config: file and line named, exit 2, nothing changed;
#   a domain the config does not name is left alone, silently;
#   managed='yes' in the XML is warned about; the lock held elsewhere: 75;
#   `win10 prepare begin -`: console released, GPU+audio on vfio-pci;
#   the VM stand-in leaves the GPU dirty;
#   `win10 release end -`: drivers back, command register and decodes as at
#   boot, fbcon back on the GPU, `pt-drm check` 0, journal clean.
. /pt-vm/lib.sh

HOOK=/etc/libvirt/hooks/qemu
CONF=/etc/pt/libvirt-hook.conf
gpu=$(full_bdf "$GPU")
aud=$(full_bdf "$AUD")
[ -x /bin/bash ] || fail "bash in the guest" "/bin/bash" "missing"

# domain_xml MANAGED: what libvirtd writes to the hook's stdin (abridged).
domain_xml() {
  cat <<EOF
<domain type='kvm' id='1'>
  <name>win10</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>8388608</memory>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <hostdev mode='subsystem' type='pci' managed='$1'>
      <source>
        <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0' multifunction='on'/>
    </hostdev>
    <hostdev mode='subsystem' type='pci' managed='$1'>
      <source>
        <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x1'/>
    </hostdev>
  </devices>
</domain>
EOF
}
# call DOMAIN OP SUB-OP MANAGED: the hook as libvirtd runs it.
call() {
  domain_xml "$4" >/tmp/domain.xml
  "$HOOK" "$1" "$2" "$3" - </tmp/domain.xml
}

mkdir -p /etc/pt
boot=$(hook_state)
say "at boot: $(echo "$boot" | tr '\n' ';')"
assert_vtcon_bind "frame buffer device" 1

say "without a configuration every call does nothing"
expect_rc 0 call win10 prepare begin no
assert_out_has "$CONF does not exist; nothing to do"
assert_unchanged "calls without a configuration"

say "a broken configuration: file and line named, nothing changed"
printf '# pt hook\ndomain win10 0000:01:00\nlock-timeout soon\n' >"$CONF"
expect_rc 2 call win10 prepare begin no
assert_out_has "$CONF:3: want 'lock-timeout SECONDS'"
printf 'domain win10 0000:01:00\ndomain linux 0000:01:00.0 1:00.1\n' >"$CONF"
expect_rc 2 call win10 prepare begin no
assert_out_has "$CONF:2: '1:00.1' is not a PCI address"
printf 'domain win10 0000:01:00\ndomain win10 0000:01:00.0\n' >"$CONF"
expect_rc 2 call win10 release end no
assert_out_has "$CONF:2: domain win10 is named twice"
say "every other call returns at once, without reading the broken configuration"
for ops in "start begin" "started begin" "stopped end" "migrate begin" "restore begin" \
  "reconnect begin" "attach begin" "release begin" "prepare end"; do
  # shellcheck disable=SC2086
  expect_rc 0 call win10 $ops no
  assert_eq "output of '$ops'" "" "$OUT"
done
assert_unchanged "broken configurations"

say "a domain the configuration does not name: exit 0, silently"
printf '# the Windows VM gets the GPU slot\ndomain win10 0000:01:00\nlock-timeout 1\n' >"$CONF"
expect_rc 0 call other prepare begin no
assert_eq "output for an unnamed domain" "" "$OUT"
expect_rc 0 call other release end no
assert_unchanged "an unnamed domain"

say "managed='yes' is warned about; the pt lock held elsewhere: exit 75, nothing changed"
mkdir -p -m 0700 /run/pt
flock /run/pt/lock sleep 30 &
holder=$!
wait_for "! flock -n /run/pt/lock true" 5 || fail "the test's lock holder" "holding /run/pt/lock" "not holding it"
expect_rc 75 call win10 prepare begin yes
assert_out_has "$gpu is managed='yes'"
assert_out_has "$aud is managed='yes'"
assert_out_has "another pt command holds /run/pt/lock"
kill "$holder"
wait "$holder" 2>/dev/null
assert_unchanged "a busy lock"

say "win10 prepare begin: GPU slot detached, console released"
printf '# the Windows VM gets the GPU slot\ndomain win10 0000:01:00\n' >"$CONF"
expect_rc 0 call win10 prepare begin no
assert_out_lacks "managed="
assert_out_has "pt-console release $gpu -> exit 0"
assert_out_has "pt-bind detach $gpu $aud -> exit 0"
assert_detached
assert_vtcon_bind "frame buffer device" 0
expect_rc 0 call win10 start begin no
expect_rc 0 call win10 started begin no
assert_detached

say "the VM runs and leaves the GPU dirty"
expect_rc 0 pt-vm-standin "$gpu"
expect_rc 0 call win10 stopped end no
assert_detached

say "win10 release end: the recovery recipe, each step logged with its exit status"
expect_rc 0 call win10 release end no
assert_recipe_logged "$gpu" "$aud"
assert_attached
assert_unchanged "the whole cycle"
expect_rc 0 pt-drm check "$GPU"
[ ! -e /run/pt/hook-libvirt-win10.devices ] || fail "the record after release end" "removed" "still there"
flock -n /run/pt/lock true || fail "the pt lock after the hook" "free" "held"
pass

# pt-vm: topology=held
# bind-kernel-held.sh: a function the guest's own kernel uses, with no process
# holding a node of it, is refused (exit 1, the use named, nothing changed):
# a virtio disk with a mounted filesystem, the same disk with an active swap
# area, a virtio NIC whose link is up. Once unmounted, swapped off and down,
# detach and attach go through and the filesystem is intact; --force moves
# them anyway.
. /pt-vm/lib.sh

for m in virtio_blk virtio_net ext4; do
  modprobe "$m" || fail "modprobe $m" "loaded" "failed"
done
wait_for '[ -e /sys/class/block/vda ]' 10 || fail "virtio disk" "/sys/class/block/vda" "$(ls /sys/class/block)"

# fn_of CLASS NAME: the PCI function below /sys/class/CLASS/NAME (its device
# link is the virtioN child of the function).
fn_of() {
  basename "$(dirname "$(readlink -f "/sys/class/$1/$2/device")")"
}
IFACE=
for i in /sys/class/net/*; do
  [ -e "$i/device" ] && IFACE=$(basename "$i") && break
done
[ -n "$IFACE" ] || fail "virtio NIC" "an interface with a device" "$(ls /sys/class/net)"
DISK=$(fn_of block vda)
NIC=$(fn_of net "$IFACE")
say "disk vda on $DISK, interface $IFACE on $NIC"
assert_driver "$DISK" virtio-pci
assert_driver "$NIC" virtio-pci

held_state() {
  echo "$DISK driver=$(driver_of "$DISK") override=$(override_of "$DISK")"
  echo "$NIC driver=$(driver_of "$NIC") override=$(override_of "$NIC")"
}
# assert_held_unchanged WHAT: both functions where they were, no journal.
assert_held_unchanged() {
  _now=$(held_state)
  [ "$_now" = "$HELD_BEFORE" ] || fail "$1: state changed" "$HELD_BEFORE" "$_now"
  assert_journal_clean
}
HELD_BEFORE=$(held_state)

# An MBR with vda1 (32 MiB at 1 MiB, Linux) and vda2 (the rest, swap).
say "partition and format the disk"
printf '\000\000\000\000\203\000\000\000\000\010\000\000\000\000\001\000\000\000\000\000\202\000\000\000\000\010\001\000\000\370\000\000' |
  dd of=/dev/vda bs=1 seek=446 conv=notrunc 2>/dev/null
printf '\125\252' | dd of=/dev/vda bs=1 seek=510 conv=notrunc 2>/dev/null
sync
blockdev --rereadpt /dev/vda
wait_for '[ -b /dev/vda1 ] && [ -b /dev/vda2 ]' 10 || fail "partitions" "/dev/vda1 /dev/vda2" "$(ls /dev/vd*)"
mke2fs -q /dev/vda1 >/dev/null || fail "mke2fs /dev/vda1" "an ext2 filesystem" "failed"
mkswap /dev/vda2 >/dev/null || fail "mkswap /dev/vda2" "a swap area" "failed"
mkdir -p /mnt/held
mount -t ext2 /dev/vda1 /mnt/held || fail "mount /dev/vda1" "mounted" "failed"
echo "written before the moves" >/mnt/held/proof
sync

say "a mounted filesystem: detach refused, nothing changed"
expect_rc 1 timeout 30 pt-bind detach "$DISK"
assert_out_has "$DISK: backs /dev/vda1 mounted on /mnt/held (ext2); unmount it, or pass --force"
assert_held_unchanged "detach refused under a mount"
grep -q ' /mnt/held ' /proc/mounts || fail "/mnt/held after the refusal" "still mounted" "$(cat /proc/mounts)"
expect_rc 1 timeout 30 pt-bind --dry-run detach "$DISK"
assert_out_has "backs /dev/vda1 mounted on /mnt/held (ext2)"
expect_rc 0 pt-bind show "$DISK"
assert_out_has "kernel users:     backs /dev/vda1 mounted on /mnt/held (ext2)"
expect_rc 0 pt-bind --json show "$DISK"
assert_out_has '"target": "/mnt/held"'

say "an active swap area: detach refused"
umount /mnt/held || fail "umount /mnt/held" "unmounted" "failed"
swapon /dev/vda2 || fail "swapon /dev/vda2" "active" "failed"
expect_rc 1 timeout 30 pt-bind detach "$DISK"
assert_out_has "backs swap on /dev/vda2; swapoff it, or pass --force"
assert_held_unchanged "detach refused under swap"
grep -q '^/dev/vda2 ' /proc/swaps || fail "swap after the refusal" "/dev/vda2 active" "$(cat /proc/swaps)"
swapoff /dev/vda2 || fail "swapoff /dev/vda2" "off" "failed"

say "an interface that is up: detach refused, the link stays up"
ip link set "$IFACE" up || fail "ip link set $IFACE up" "up" "failed"
expect_rc 1 timeout 30 pt-bind detach "$NIC"
assert_out_has "$NIC: has network interface $IFACE up"
assert_out_has "ip link set $IFACE down"
assert_held_unchanged "detach refused under an up link"
flags=$(cat "/sys/class/net/$IFACE/flags")
[ $((flags & 1)) = 1 ] || fail "$IFACE after the refusal" "IFF_UP set" "flags $flags"
say "both at once: one message names each"
mount -t ext2 /dev/vda1 /mnt/held || fail "mount /dev/vda1" "mounted" "failed"
expect_rc 1 timeout 30 pt-bind detach "$DISK" "$NIC"
assert_out_has "$NIC: has network interface $IFACE up"
assert_out_has "; $DISK backs /dev/vda1 mounted on /mnt/held (ext2)"
assert_held_unchanged "detach of both refused"
umount /mnt/held
ip link set "$IFACE" down

say "nothing held: detach and attach go through"
expect_rc 0 timeout 30 pt-bind detach "$DISK" "$NIC"
assert_driver "$DISK" vfio-pci
assert_driver "$NIC" vfio-pci
[ ! -e /sys/class/block/vda ] || fail "vda after detach" "gone" "still there"
[ ! -e "/sys/class/net/$IFACE" ] || fail "$IFACE after detach" "gone" "still there"
expect_rc 0 timeout 30 pt-bind attach "$DISK" "$NIC"
assert_driver "$DISK" virtio-pci
assert_driver "$NIC" virtio-pci
assert_journal_clean
wait_for '[ -b /dev/vda1 ]' 10 || fail "vda1 after attach" "back" "$(ls /sys/class/block)"
mount -t ext2 /dev/vda1 /mnt/held || fail "mount /dev/vda1 after attach" "mounted" "failed"
assert_eq "the file on the disk after the round trip" "written before the moves" "$(cat /mnt/held/proof)"

say "--force: detach under a mount and an up link"
IFACE2=
for i in /sys/class/net/*; do
  [ -e "$i/device" ] && IFACE2=$(basename "$i") && break
done
ip link set "$IFACE2" up
expect_rc 0 timeout 30 pt-bind detach --force "$DISK" "$NIC"
assert_driver "$DISK" vfio-pci
assert_driver "$NIC" vfio-pci
# The filesystem lost its disk; let it go before the disk comes back.
timeout 30 umount -l /mnt/held || fail "umount -l of the orphaned mount" "done" "failed"
expect_rc 0 timeout 30 pt-bind attach "$DISK" "$NIC"
assert_driver "$DISK" virtio-pci
assert_driver "$NIC" virtio-pci
assert_journal_clean
pass

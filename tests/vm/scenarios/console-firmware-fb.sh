# pt-vm: topology=fwfb
# console-firmware-fb.sh: UEFI firmware (OVMF) leaves a GOP framebuffer on
# the virtio-vga boot VGA; the kernel registers efi-framebuffer.0, efifb
# binds it as fb0 and fbcon runs on it (virtio_gpu is kept off with
# virtio_gpu.modeset=0). release 01:00.0 unbinds fbcon and then unbinds
# efi-framebuffer.0 from its driver by name, journalled in that order;
# restore binds it back (driver link and fb0 return) and fbcon with it.
# The GPU is found through /proc/iomem (6.1) or as the parent (6.9+).
# The low-level unbind/bind NAME forms do the same for one object.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
dev=/sys/bus/platform/devices/efi-framebuffer.0
[ -e "$dev" ] || fail "firmware framebuffer" "$dev" "$(ls /sys/bus/platform/devices | grep -i frame || echo none)"
drv=$(basename "$(readlink "$dev/driver")")
assert_eq "driver of efi-framebuffer.0" efi-framebuffer "$drv"
fb=$(for f in /sys/class/graphics/fb[0-9]*; do [ "$(readlink -f "$f/device")" = "$(readlink -f "$dev")" ] && basename "$f"; done)
[ -n "$fb" ] || fail "fb of efi-framebuffer.0" "an fbN" "none"
assert_vtcon_bind "frame buffer device" 1
assert_eq "boot_vga of $gpu" 1 "$(cat "/sys/bus/pci/devices/$gpu/boot_vga")"

# From 6.9 the kernel makes the firmware framebuffer a child of the GPU;
# before, it sits in /sys/devices/platform and only /proc/iomem ties it.
case $(readlink -f "$dev") in
  "$(readlink -f "/sys/bus/pci/devices/$gpu")"/*) how=parent text="(parent device)" ;;
  *) how=iomem text="(from /proc/iomem)" ;;
esac
say "list ties efi-framebuffer.0 to $gpu ($how)"
expect_json 0 pt-console --json list
assert_json "firmware framebuffer" '.firmware_framebuffers | length == 1 and .[0].name == "efi-framebuffer.0" and .[0].driver == "efi-framebuffer" and .[0].gpu == $g and .[0].gpu_from == $h and .[0].framebuffers == [$f]' --arg g "$gpu" --arg f "$fb" --arg h "$how"
assert_json "its fb" '[.framebuffers[] | select(.node == $f)][0] | .firmware == "efi-framebuffer.0" and .gpu == $g and .name == "EFI VGA"' --arg g "$gpu" --arg f "$fb"
expect_rc 0 pt-console list
assert_out_has "efi-framebuffer.0"
assert_out_has "$text"

say "release: fbcon first, then efi-framebuffer.0 from its driver"
before=$(vtconsoles)
expect_rc 0 pt-console -v release "$GPU"
assert_out_has "unbind efi-framebuffer.0 from efi-framebuffer"
assert_out_has "write /sys/bus/platform/drivers/efi-framebuffer/unbind \"efi-framebuffer.0\""
[ ! -e "$dev/driver" ] || fail "driver link of efi-framebuffer.0 after release" "absent" "$(readlink "$dev/driver")"
[ ! -e "/sys/class/graphics/$fb" ] || fail "$fb after release" "gone" "present"
assert_vtcon_bind "frame buffer device" 0
assert_vtcon_bind "dummy device" 1
assert_eq "journal" '[["vtconsole","frame buffer device"],["framebuffer","efi-framebuffer.0","efi-framebuffer"]]' \
  "$(console_journal "$GPU" | jq -c 'map(if .kind == "framebuffer" then [.kind, .name, .driver] else [.kind, .name] end)')"

say "release again changes nothing"
expect_rc 0 pt-console release "$GPU"
assert_out_has "already"
[ ! -e "$dev/driver" ] || fail "driver link after the second release" "absent" "present"

say "restore: efi-framebuffer.0 back on its driver, then fbcon"
expect_rc 0 pt-console -v restore "$GPU"
assert_out_has "write /sys/bus/platform/drivers/efi-framebuffer/bind \"efi-framebuffer.0\""
assert_eq "driver of efi-framebuffer.0 after restore" efi-framebuffer "$(basename "$(readlink "$dev/driver")")"
[ -e "/sys/class/graphics/$fb" ] || fail "$fb after restore" "present" "$(ls /sys/class/graphics | tr '\n' ' ')"
assert_eq "vtconsoles after restore" "$before" "$(vtconsoles)"
assert_eq "journal after restore" null "$(console_journal "$GPU")"

say "low-level unbind and bind by name"
expect_rc 0 pt-console unbind efi-framebuffer.0
[ ! -e "$dev/driver" ] || fail "driver link after unbind NAME" "absent" "present"
expect_rc 0 pt-console unbind efi-framebuffer.0
assert_out_has "has no driver bound"
expect_rc 0 pt-console bind efi-framebuffer.0
assert_eq "driver after bind NAME" efi-framebuffer "$(basename "$(readlink "$dev/driver")")"
assert_eq "vtconsoles after the low-level cycle" "$before" "$(vtconsoles)"
assert_eq "journal after the low-level forms" null "$(console_journal "$GPU")"
pass

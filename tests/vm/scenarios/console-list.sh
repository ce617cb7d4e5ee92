# console-list.sh (default topology): pt-console list, as text and --json,
# agrees with /sys/class/vtconsole, /sys/class/graphics, the platform bus's
# firmware framebuffers and /sys/class/tty/tty0/active; fbcon's map (read
# with FBIOGET_CON2FBMAP) matches the kernel's "Remapping primary device"
# line.
. /pt-vm/lib.sh

expect_json 0 pt-console --json list
json=$OUT

say "vtconsoles"
for v in /sys/class/vtconsole/vtcon*; do
  n=$(basename "$v")
  raw=$(cat "$v/name")
  name=$(echo "$raw" | sed 's/^([SM]) //')
  mark=$(echo "$raw" | sed -n 's/^(\([SM]\)) .*/\1/p')
  bound=false
  [ "$(cat "$v/bind")" = 1 ] && bound=true
  OUT=$json assert_json "$n in list" '[.vtconsoles[] | select(.node == $n)] | length == 1 and .[0].name == $name and (.[0].mark // "") == $mark and .[0].bound == ($b == "true")' \
    --arg n "$n" --arg name "$name" --arg mark "$mark" --arg b "$bound"
done
OUT=$json assert_json "vtconsole count" '.vtconsoles | length == $c' --argjson c "$(ls /sys/class/vtconsole | wc -l)"

say "framebuffers"
count=0
for f in /sys/class/graphics/fb[0-9]*; do
  count=$((count + 1))
  n=$(basename "$f")
  dev=$(readlink -f "$f/device")
  # The PCI function it hangs under: the device itself, or virtio0's parent (5.10).
  pci=$(echo "$dev" | tr '/' '\n' | grep -E '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$' | tail -n 1)
  OUT=$json assert_json "$n in list" '[.framebuffers[] | select(.node == $n)] | length == 1 and .[0].name == $name and .[0].device == $d and .[0].pci == $p' \
    --arg n "$n" --arg name "$(cat "$f/name")" --arg d "$dev" --arg p "$pci"
done
OUT=$json assert_json "framebuffer count" '.framebuffers | length == $c' --argjson c "$count"
OUT=$json assert_json "the GPU's fb" '[.framebuffers[] | select(.gpu == $g)] | length == 1 and .[0].name == "virtio_gpudrmfb" and .[0].driver == "virtio_gpu"' --arg g "$GPU"

say "firmware framebuffers (none under SeaBIOS with -kernel)"
fw=$(ls /sys/bus/platform/devices | grep -cE '^(simple|efi|vesa|vga)-framebuffer\.' || true)
OUT=$json assert_json "firmware framebuffer count" '.firmware_framebuffers | length == $c' --argjson c "$fw"

say "active VT and boot VGA"
OUT=$json assert_json "active VT" '.active_vt == $a' --arg a "$(cat /sys/class/tty/tty0/active)"
for d in $(display_functions); do
  [ "$(cat "/sys/bus/pci/devices/$d/boot_vga")" = 1 ] && OUT=$json assert_json "boot VGA" '.boot_vga == $d' --arg d "$d"
done

say "fbcon's map puts tty1 on the boot VGA's fb, as the kernel's remapping line says"
boot=
for d in $(display_functions); do [ "$(cat "/sys/bus/pci/devices/$d/boot_vga")" = 1 ] && boot=$d; done
primary=$(fbs_of "$boot")
primary=${primary%% *}
primary=${primary#fb}
[ -n "$primary" ] || fail "fb of the boot VGA $boot" "an fbN" "none"
line=$(fbcon_line "Remapping primary device")
if [ -n "$line" ]; then
  echo "   $line"
  assert_contains "fbcon remapping line" "Remapping primary device, fb$primary," "$line"
else
  echo "   this kernel logs no remapping line (5.10); the boot VGA's fb is fb$primary"
fi
OUT=$json assert_json "tty1's fb" '.con2fb["1"] == $p' --argjson p "$primary"

say "the text form names the same things"
expect_rc 0 pt-console list
for v in /sys/class/vtconsole/vtcon*; do assert_out_has "$(basename "$v")     $(cat "$v/name")"; done
for f in /sys/class/graphics/fb[0-9]*; do assert_out_has "$(basename "$f")"; done
assert_out_has "active VT:  $(cat /sys/class/tty/tty0/active)"
assert_out_has "tty1-63 -> fb$primary"
pass

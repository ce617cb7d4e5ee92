# pt-vm: topology=console
# console-release.sh: on the boot VGA GPU that carries fbcon (virtio-vga at
# 01:00.0), release unbinds fbcon by name and journals it; the dummy console
# takes the consoles over. restore brings fbcon back (through the dummy
# console: vt.c only binds over a system driver, and the dummy console that
# replaced VGA+ is registered as a modular one). A second restore has nothing
# recorded; a second release is idempotent.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
assert_eq "boot_vga of $gpu" 1 "$(cat "/sys/bus/pci/devices/$gpu/boot_vga")"
fb=$(fbs_of "$gpu")
[ -n "$fb" ] || fail "framebuffer of $gpu" "an fbN under it" "none: $(ls /sys/class/graphics)"
if dmesg | grep -q "fbcon: .* is primary device"; then
  assert_contains "fbcon primary line" "virtio_gpudrmfb" "$(fbcon_line "is primary device")"
fi
assert_vtcon_bind "frame buffer device" 1
say "state at boot"
vtconsoles
echo "  fb of $gpu: $fb"

say "list --json shows the fbcon map on the GPU's framebuffer"
expect_json 0 pt-console --json list
assert_json "fbcon in list" '[.vtconsoles[] | select(.fbcon)] | length == 1 and .[0].bound == true'
assert_json "fb of the GPU" '[.framebuffers[] | select(.gpu == $g)] | length >= 1' --arg g "$gpu"
assert_json "fbcon map known" '.con2fb != null and (.con2fb | length) > 0'
fbn=${fb%% *}
assert_json "tty1 on the GPU's fb" '.con2fb["1"] == $n' --argjson n "${fbn#fb}"

boot_map=$(printf '%s' "$OUT" | jq -c .con2fb)

say "release unbinds fbcon from the GPU's framebuffer"
before=$(vtconsoles)
expect_rc 0 pt-console release "$GPU"
assert_out_has "unbind"
assert_out_has "frame buffer device"
assert_vtcon_bind "frame buffer device" 0
assert_vtcon_bind "dummy device" 1
assert_eq "framebuffers of $gpu after release" "$fb" "$(fbs_of "$gpu")"
j=$(console_journal "$GPU")
echo "  journal: $j"
assert_eq "journal kinds" '["vtconsole"]' "$(echo "$j" | jq -c '[.[].kind]')"
assert_eq "journal name" '"frame buffer device"' "$(echo "$j" | jq -c '.[0].name')"
expect_json 0 pt-console --json list
assert_json "no console mapped after release" '.con2fb == null or (.con2fb | length) == 0 or ([.con2fb[]] | all(. != $n))' --argjson n "${fbn#fb}"

say "release twice is idempotent"
mid=$(vtconsoles)
expect_rc 0 pt-console release "$GPU"
assert_out_has "already"
assert_eq "vtconsoles after the second release" "$mid" "$(vtconsoles)"
assert_eq "journal after the second release" "$j" "$(console_journal "$GPU")"

say "restore binds fbcon back"
expect_rc 0 pt-console -v restore "$GPU"
assert_vtcon_bind "frame buffer device" 1
assert_vtcon_bind "dummy device" 0
assert_eq "vtconsoles after restore" "$before" "$(vtconsoles)"
assert_eq "journal after restore" null "$(console_journal "$GPU")"
expect_json 0 pt-console --json list
assert_json "tty1 on the GPU's fb again" '.con2fb["1"] == $n' --argjson n "${fbn#fb}"
assert_eq "fbcon's console map after restore" "$boot_map" "$(printf '%s' "$OUT" | jq -c .con2fb)"

say "a second restore has nothing recorded"
expect_rc 0 pt-console restore "$GPU"
assert_out_has "nothing recorded"
assert_eq "vtconsoles after the second restore" "$before" "$(vtconsoles)"

say "--dry-run release plans the write and changes nothing"
expect_rc 0 pt-console --dry-run release "$GPU"
assert_out_has "write /sys/class/vtconsole/"
assert_eq "vtconsoles after --dry-run" "$before" "$(vtconsoles)"
assert_eq "journal after --dry-run" null "$(console_journal "$GPU")"
pass

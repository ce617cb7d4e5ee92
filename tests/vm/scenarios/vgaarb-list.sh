# vgaarb-list.sh: pt-vgaarb list (text and --json) and show agree with a raw
# read of /dev/vga_arbiter for both VGA cards: the bochs boot VGA at 00:01.0
# and the virtio-vga GPU at 01:00.0.
. /pt-vm/lib.sh

boot=$(boot_vga_device)
assert_eq "boot VGA device" 0000:00:01.0 "$boot"
[ -c /dev/vga_arbiter ] || fail "/dev/vga_arbiter" "a character device" "$(ls -l /dev/vga_arbiter 2>&1)"

for dev in "$boot" "$GPU"; do
  raw=$(arb_line "$dev")
  say "$dev: raw '$raw'"
  case $raw in count:*",PCI:$dev,"*) ;; *) fail "raw status line of $dev" "count:N,PCI:$dev,..." "$raw" ;; esac
  [ "$dev" = "$boot" ] && boot_flag=yes || boot_flag=no

  expect_rc 0 pt-vgaarb list
  row=$(printf '%s\n' "$OUT" | grep "^$dev " | tr -s ' ')
  want="$dev 0300 $(driver_of "$dev") $boot_flag $(cmd_bits "$dev") $(arb_field "$dev" count) $(arb_field "$dev" decodes) $(arb_field "$dev" owns) $(arb_field "$dev" locks)"
  assert_eq "list row of $dev" "$want" "$row"

  expect_json 0 pt-vgaarb list --json
  assert_json "list --json entry of $dev" \
    '[.[] | select(.device == $d)] | length == 1 and (.[0] | .arbiter.line == $l and .class == "0300" and .arbitrated and .driver == $drv and .boot_vga == ($b == "yes") and .arbiter.count == ($c | tonumber) and .arbiter.decodes == $dec and .arbiter.owns == $own and (.arbiter.locks + "(" + (.arbiter.io_locks | tostring) + ":" + (.arbiter.mem_locks | tostring) + ")") == $lk and .command_io != null and .note == null)' \
    --arg d "$dev" --arg l "$raw" --arg drv "$(driver_of "$dev")" --arg b "$boot_flag" --arg c "$(arb_field "$dev" count)" \
    --arg dec "$(arb_field "$dev" decodes)" --arg own "$(arb_field "$dev" owns)" --arg lk "$(arb_field "$dev" locks)"

  expect_rc 0 pt-vgaarb show "$dev"
  assert_out_has "  arbiter:      $raw"
  assert_out_has "  boot_vga:     $([ "$boot_flag" = yes ] && echo 1 || echo 0)"
  assert_out_has "vgaarb: VGA device added"
  expect_json 0 pt-vgaarb show --json "$dev"
  assert_json "show --json of $dev" '.arbiter.line == $l and (.kernel_log | length) > 0 and .kernel_log_error == null' --arg l "$raw"
done

say "the raw lines the unit tests and the fuzz corpus use"
for dev in "$boot" "$GPU"; do echo "   CAPTURE $(arb_line "$dev")"; done
pass

# pt-vm: topology=console
# display-cycle.sh: issue 4's whole sequence on the boot VGA GPU that carries
# the console: pt-console release -> pt-bind detach -> pt-bind attach ->
# pt-vgaarb restore -> pt-console restore ends with the console back on the
# GPU, its decodes io+mem, and the journal's VGA and console records gone.
# Then the origin story's arbiter damage: decodes none after the attach (as
# nvidia leaves it), which restore repairs from the record pt-bind made.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
assert_eq "boot VGA" "$gpu" "$(boot_vga_device)"
tty1_fb() {
  pt-console --json list | jq -r 'if .con2fb == null or .con2fb["1"] == null then "" else "fb\(.con2fb["1"])" end'
}
fb_boot=$(fbs_of "$gpu")
assert_eq "tty1's framebuffer at boot" "$fb_boot" "$(tty1_fb)"
decodes_boot=$(arb_field "$GPU" decodes)
say "at boot: $(arb_line "$GPU"); fbcon on $fb_boot"

for damage in none decodes-none; do
  say "[$damage] pt-console release $GPU"
  expect_rc 0 pt-console release "$GPU"
  assert_vtcon_bind "frame buffer device" 0
  say "[$damage] pt-bind detach $SLOT"
  expect_rc 0 pt-bind detach "$SLOT"
  assert_detached
  assert_eq "journal VGA record of $GPU (decodes)" "$decodes_boot" "$(journal_vga "$GPU" decodes)"
  assert_eq "journal VGA record of $GPU (boot_vga)" true "$(journal_vga "$GPU" boot_vga)"
  say "[$damage] pt-bind attach $SLOT"
  expect_rc 0 pt-bind attach "$SLOT"
  assert_attached
  wait_for "[ -n \"\$(fbs_of $gpu)\" ]" 20 || fail "framebuffer of $gpu after attach" "an fbN" "none"
  if [ "$damage" = decodes-none ]; then
    # What nvidia leaves after a rebind; virtio-pci has no decode callback,
    # so the arbiter takes userspace's word here as it would for nvidia.
    expect_rc 0 pt-vgaarb decodes "$GPU" none
    assert_eq "decodes of $GPU after the damage" none "$(arb_field "$GPU" decodes)"
  fi
  say "[$damage] pt-vgaarb restore $GPU"
  expect_rc 0 pt-vgaarb restore "$GPU"
  assert_eq "decodes of $GPU after restore" "$decodes_boot" "$(arb_field "$GPU" decodes)"
  assert_eq "journal VGA record of $GPU" null "$(journal_vga "$GPU" decodes)"
  say "[$damage] pt-console restore $GPU"
  expect_rc 0 pt-console restore "$GPU"
  assert_vtcon_bind "frame buffer device" 1
  fb_now=$(fbs_of "$gpu")
  case " $fb_now " in
    *" $(tty1_fb) "*) ;;
    *) fail "tty1's framebuffer" "one of $gpu's: $fb_now" "'$(tty1_fb)'" ;;
  esac
  assert_eq "journal console records of $GPU" null "$(console_journal "$GPU")"
  assert_eq "devices in the journal" 0 "$(jq '.devices | length' "$PT_JOURNAL")"
  say "[$damage] end: $(arb_line "$GPU"); tty1 on $(tty1_fb)"
done
pass

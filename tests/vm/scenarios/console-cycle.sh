# pt-vm: topology=console
# console-cycle.sh: the recovery recipe on the boot VGA GPU that carries the
# console: pt-console release -> pt-bind detach -> pt-bind attach ->
# pt-console restore ends with fbcon bound and mapping tty1 to a framebuffer
# of 01:00.0. Second pass: while the GPU is away the other display re-probes
# and takes the freed fb number, so the re-probed virtio_gpu comes back on a
# new fbN; restore must say that the recorded fb is now another device's and
# which fb the GPU has instead. fbcon takes the consoles back by itself when
# the GPU's fb registers; 6.1 also remaps them to it as the primary, 5.10
# leaves them on the other display's fb, and restore maps them back
# (FBIOPUT_CON2FBMAP) to where release found them.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
other=$(for d in $(display_functions); do [ "$d" != "$gpu" ] && echo "$d"; done | head -n 1)
[ -n "$other" ] || fail "second display" "a display function besides $gpu" "none"
other_drv=$(driver_of "$other")

# tty1's framebuffer from pt-console's list: "fbN" or "".
tty1_fb() {
  pt-console --json list | jq -r 'if .con2fb == null or .con2fb["1"] == null then "" else "fb\(.con2fb["1"])" end'
}

# console_on_gpu: fbcon bound and tty1 mapped to one of the GPU's framebuffers.
assert_console_on_gpu() {
  assert_vtcon_bind "frame buffer device" 1
  _fbs=$(fbs_of "$gpu")
  [ -n "$_fbs" ] || fail "framebuffer of $gpu" "an fbN under it" "none: $(ls /sys/class/graphics | tr '\n' ' ')"
  _t=$(tty1_fb)
  case " $_fbs " in
    *" $_t "*) ;;
    *) fail "tty1's framebuffer" "one of $gpu's: $_fbs" "'$_t'" ;;
  esac
  assert_eq "journal of $gpu" null "$(console_journal "$GPU")"
}

fb_before=$(fbs_of "$gpu")
assert_eq "tty1's framebuffer at boot" "$fb_before" "$(tty1_fb)"

for pass in same-fb new-fb; do
  say "pass $pass: release"
  expect_rc 0 pt-console release "$GPU"
  assert_vtcon_bind "frame buffer device" 0
  say "pass $pass: detach the GPU slot to vfio-pci"
  expect_rc 0 pt-bind detach "$SLOT"
  assert_detached
  assert_eq "framebuffers of $gpu while detached" "" "$(fbs_of "$gpu")"
  if [ "$pass" = new-fb ]; then
    say "pass $pass: $other re-probes while the GPU is away and takes the free fb number"
    echo "$other" >"/sys/bus/pci/drivers/$other_drv/unbind"
    echo "$other" >"/sys/bus/pci/drivers/$other_drv/bind"
    wait_for "[ -n \"\$(fbs_of $other)\" ]" 10 || fail "framebuffer of $other after re-probe" "an fbN" "none"
    echo "   $other now has $(fbs_of "$other")"
  fi
  say "pass $pass: attach the GPU slot"
  expect_rc 0 pt-bind attach "$SLOT"
  assert_attached
  wait_for "[ -n \"\$(fbs_of $gpu)\" ]" 20 || fail "framebuffer of $gpu after attach" "an fbN" "none"
  fb_now=$(fbs_of "$gpu")
  echo "   $gpu now has $fb_now; fbcon bind=$(vtcon_bind 'frame buffer device')"
  say "pass $pass: restore"
  expect_rc 0 pt-console restore "$GPU"
  if [ "$pass" = new-fb ]; then
    [ "$fb_now" != "$fb_before" ] || fail "fb of $gpu after the re-probe" "not $fb_before" "$fb_now"
    assert_out_has "fbcon served $fb_before (virtio_gpudrmfb) of $gpu at release"
    assert_out_has "$fb_before is now"
    assert_out_has "framebuffers now: $fb_now (virtio_gpudrmfb)"
  fi
  assert_console_on_gpu
  # 6.1 and later log the primary device; 5.10 does not (the map above is the proof).
  if dmesg | grep -q "fbcon: .* is primary device"; then
    assert_contains "last fbcon primary line" "virtio_gpudrmfb ($fb_now) is primary device" "$(fbcon_line "is primary device")"
  fi
  vtconsoles
done
pass

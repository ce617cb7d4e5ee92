# drm-cycle.sh: check is healthy on the virtio GPU (its Virtual-1 lit by the
# fbdev emulation); after pt-bind detach it is "no DRM device" (exit 1);
# wait returns once pt-bind attach brings the card back, and check is healthy
# again. pt-drm leaves no DRM master behind.
. /pt-vm/lib.sh

assert_attached
say "the virtio GPU is lit"
expect_json 0 pt-drm --json check "$GPU"
assert_json "verdict" '.verdict == "healthy" and .exit == 0 and .crtc_state_read == true'
assert_json "Virtual-1 lit" '[.connectors[] | select(.name == "Virtual-1")][0].lit == true'
expect_rc 0 pt-drm show "$GPU"
assert_out_has Virtual-1
clients=/sys/kernel/debug/dri/$(basename "$(drm_card_of "$GPU")" | tr -d card)/clients
if [ -r "$clients" ]; then
  assert_eq "DRM clients after pt-drm show" 1 "$(wc -l <"$clients")"
fi

say "a process that opens the card first becomes DRM master (kernel fact)"
card=$(drm_card_of "$GPU")
hold_open "$card"
expect_json 0 pt-drm --json show "$GPU"
assert_json "master held by the holder" '.master.exists == true'
[ -r "$clients" ] && assert_json "holder named" '.master.holder | test("sleep")'
release

say "detach: no DRM device"
expect_rc 0 pt-bind detach "$GPU"
assert_detached
expect_rc 1 pt-drm check "$GPU"
assert_out_has "no-drm-device"
assert_out_has "vfio-pci"

say "attach while wait is running"
pt-drm wait --timeout 60 "$GPU" >/tmp/wait.out 2>&1 &
waiter=$!
mark=$(now_ns)
expect_rc 0 pt-bind attach "$GPU"
wait "$waiter"
wrc=$?
cat /tmp/wait.out | sed 's/^/  | /'
assert_eq "exit status of pt-drm wait" 0 "$wrc"
echo "   wait returned $(elapsed_ms "$mark") ms after attach began"
[ -c "$(drm_card_of "$GPU")" ] || fail "card of $GPU after wait" "a character device" "none"
# Linux 5.10's virtio-gpu registers its fbdev device on rebind without
# enabling a CRTC (bound but black); the fbdev restore on the next last close
# of the card lights it, so a later check finds it healthy. pt-drm(8) NOTES.
case $(uname -r) in
  5.10.*)
    expect_rc_in "0 6" pt-drm --json check "$GPU"
    if [ "$RC" = 6 ]; then
      echo "   note: $(uname -r): bound but black after attach, as this kernel leaves it"
      assert_json "reason" '[.connectors[] | select(.name == "Virtual-1")][0].reason | test("no encoder or CRTC")'
      expect_json 0 pt-drm --json check "$GPU"
      echo "   note: healthy once the first check closed the card (drm_lastclose restored fbdev)"
    fi
    ;;
  *) expect_json 0 pt-drm --json check "$GPU" ;;
esac
assert_json "verdict after attach" '.verdict == "healthy"'
expect_rc 0 pt-drm show "$GPU"
pass

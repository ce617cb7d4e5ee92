# The quick-start demo, run inside the QEMU guest by scripts/demo: the
# detach/attach cycle on the emulated GPU (virtio-vga) and its audio function
# (ich9-intel-hda), with the state of both functions before and after each step.
. /pt-vm/lib.sh

t0=$(cut -d' ' -f1 /proc/uptime)
elapsed() { awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%6.2fs", b - a }'; }
step() { echo; echo "[$(elapsed)] ==== $* ===="; }

table() {
  printf '  %-14s %-16s %-16s %-6s %-14s %s\n' FUNCTION DRIVER DRIVER_OVERRIDE GROUP VFIO_NODE DRM_CARD
  for d in "$GPU" "$AUD"; do
    g=$(group_of "$d")
    node=-
    [ -e "/dev/vfio/$g" ] && node=/dev/vfio/$g
    card=$(drm_card_of "$d")
    printf '  %-14s %-16s %-16s %-6s %-14s %s\n' "$d" "$(driver_of "$d")" "$(override_of "$d")" "$g" "$node" "${card:--}"
  done
  if [ -s "$PT_JOURNAL" ]; then echo "  journal $PT_JOURNAL:"; sed 's/^/    /' "$PT_JOURNAL"; else echo "  journal: empty"; fi
}

step "the host as it booted"
pt-bind list --class all | grep -E "^DEVICE|$SLOT"
table

step "1. plan: pt-bind --dry-run detach $SLOT"
pt-bind --dry-run detach "$SLOT" || exit $?

step "2. detach: pt-bind -v detach $SLOT"
pt-bind -v detach "$SLOT" || exit $?
table

step "3. the VM's turn: the group node is what QEMU would open"
ls -l "/dev/vfio/$(group_of "$GPU")"

step "4. attach: pt-bind -v attach $SLOT"
pt-bind -v attach "$SLOT" || exit $?
table

assert_attached
assert_journal_clean
step "cycle complete: both functions are back on $GPU_DRIVER and $AUD_DRIVER"

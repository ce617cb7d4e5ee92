# reset-methods.sh: `pt-reset methods` on the GPU + HDMI-audio slot lists
# every method in order with our verdict, the kernel's and a reason: flr and
# pm for the GPU, bus refused because 01:00.1 shares the bus; it agrees with
# the kernel's reset_method where the kernel is right; --json has the same
# content. Listing changes nothing; bad addresses are refused.
. /pt-vm/lib.sh

assert_attached
before=$(snapshot)
gpu_rm=$(reset_method_of "$GPU")
say "kernel $(uname -r); reset_method of $GPU: $gpu_rm; of $AUD: $(reset_method_of "$AUD")"
if kernel_has_reset_method; then has_rm=1; else has_rm=0; fi

unchanged() {
  assert_snapshot "$1" "$before"
  assert_eq "reset_method of $GPU after $1" "$gpu_rm" "$(reset_method_of "$GPU")"
}

# kernel_view DEV METHOD: what the kernel column must say.
kernel_view() {
  if [ $has_rm = 0 ]; then
    echo "-"
  elif [ -r "/sys/bus/pci/devices/$1/reset_method" ]; then
    case " $(cat "/sys/bus/pci/devices/$1/reset_method") " in
      *" $2 "*) echo yes ;;
      *) echo no ;;
    esac
  else
    # A function without methods has no reset_method file.
    echo no
  fi
}

check_rows() {
  dev=$1
  order=$(printf '%s\n' "$OUT" | awk -v dev="$dev" '/^[^ ]/ { on = ($1 == dev); next } on && $1 != "METHOD" { printf "%s ", $1 }' | sed 's/ $//')
  assert_eq "methods of $dev, in order" "$RESET_METHODS" "$order"
  for m in $RESET_METHODS; do
    row=$(method_row "$dev" "$m")
    # shellcheck disable=SC2086 # split the row into its fields
    set -- $row
    ours=$2 kern=$3
    case $ours in yes | no) ;; *) fail "'$m' row of $dev: our verdict" "yes or no" "$row" ;; esac
    case $m in
      slot | rescan)
        # Not a kernel method name: '-', or 'no' where reset_method exists.
        case $kern in
          -) ;;
          no) [ $has_rm = 1 ] || fail "'$m' row of $dev: kernel column" "-" "$row" ;;
          *) fail "'$m' row of $dev: kernel column" "- (the kernel has no such method)" "$row" ;;
        esac
        ;;
      *) assert_eq "'$m' row of $dev: kernel column (reset_method: $(reset_method_of "$dev"))" "$(kernel_view "$dev" "$m")" "$kern" ;;
    esac
    [ -n "$(echo "$row" | cut -d' ' -f4-)" ] || fail "'$m' row of $dev" "a reason" "$row"
    if [ "$kern" != "-" ] && [ "$ours" != "$kern" ]; then
      assert_contains "'$m' row of $dev (we say $ours, the kernel $kern)" "[kernel disagrees]" "$row"
    else
      assert_lacks "'$m' row of $dev (no disagreement)" "[kernel disagrees]" "$row"
    fi
  done
}

say "text: both functions of the slot"
expect_rc 0 pt-reset methods "$GPU" "$AUD"
check_rows "$GPU"
check_rows "$AUD"
assert_eq "flr of $GPU" yes "$(method_row "$GPU" flr | awk '{print $2}')"
assert_eq "pm of $GPU" yes "$(method_row "$GPU" pm | awk '{print $2}')"
assert_eq "bus of $GPU" no "$(method_row "$GPU" bus | awk '{print $2}')"
assert_contains "reason bus is unavailable for $GPU" "$AUD" "$(method_row "$GPU" bus)"
assert_eq "bus of $AUD" no "$(method_row "$AUD" bus | awk '{print $2}')"
assert_contains "reason bus is unavailable for $AUD" "$GPU" "$(method_row "$AUD" bus)"
for m in flr pm; do
  assert_eq "$m of $AUD (a plain PCI function without a PM capability)" no "$(method_row "$AUD" "$m" | awk '{print $2}')"
done
unchanged "pt-reset methods"

if [ $has_rm = 1 ]; then
  say "where we agree with the kernel: flr and pm"
  for m in flr pm; do
    assert_eq "kernel's view of $m for $GPU" yes "$(method_row "$GPU" $m | awk '{print $3}')"
  done
  case " $gpu_rm " in
    *" bus "*)
      say "where we disagree: the kernel lists bus (probed before $AUD was added); it refuses to select it now"
      if echo bus >"/sys/bus/pci/devices/$GPU/reset_method" 2>/dev/null; then
        echo "$gpu_rm" >"/sys/bus/pci/devices/$GPU/reset_method"
        fail "writing 'bus' to reset_method of $GPU" "refused by the kernel (EINVAL), as pt-reset says" "accepted"
      fi
      assert_eq "reset_method of $GPU after the refused write" "$gpu_rm" "$(reset_method_of "$GPU")"
      ;;
  esac
else
  say "no reset_method file on this kernel: the kernel column is '-' throughout"
fi

say "the same with a slot address"
expect_rc 0 pt-reset methods "$SLOT"
check_rows "$GPU"
check_rows "$AUD"

say "JSON"
expect_json 0 pt-reset --json methods "$GPU" "$AUD"
assert_json "devices in order" '[.[].device] == [$g, $a]' --arg g "$GPU" --arg a "$AUD"
assert_json "method names in order" 'all(.[]; [.methods[].name] == ($o | split(" ")))' --arg o "$RESET_METHODS"
assert_json "field types" 'all(.[].methods[]; (.available | type == "boolean") and (.kernel == null or (.kernel | type == "boolean")) and (.reason | type == "string" and length > 0) and (keys == ["available", "kernel", "name", "reason"]))'
assert_json "flr and pm of the GPU" '.[0].methods | map(select(.name == "flr" or .name == "pm") | .available) == [true, true]'
assert_json "bus of the GPU" '.[0].methods[] | select(.name == "bus") | .available == false and (.reason | contains($a))' --arg a "$AUD"
# The JSON says what the text says, row for row.
json=$OUT
expect_rc 0 pt-reset methods "$GPU" "$AUD"
for dev in "$GPU" "$AUD"; do
  for m in $RESET_METHODS; do
    t=$(method_row "$dev" "$m" | awk '{print $2, $3}')
    j=$(printf '%s' "$json" | jq -r --arg d "$dev" --arg m "$m" '.[] | select(.device == $d) | .methods[] | select(.name == $m) | [(if .available then "yes" else "no" end), (if .kernel == null then "-" elif .kernel then "yes" else "no" end)] | join(" ")')
    assert_eq "$m of $dev: JSON (available kernel) vs text" "$t" "$j"
  done
done
OUT=$json
if [ $has_rm = 0 ]; then
  assert_json "kernel is null on a kernel without reset_method" 'all(.[].methods[]; .kernel == null)'
fi
unchanged "pt-reset --json methods"

say "bad input"
expect_rc 2 pt-reset methods zz:00.0
assert_out_has "zz:00.0"
expect_rc 2 pt-reset zz:00.0
expect_rc 2 pt-reset --method no_such_method "$GPU"
expect_rc 1 pt-reset methods 05:00.0
assert_out_has "05:00.0"
expect_rc 1 pt-reset 05:00.0
bridge=$(parent_of "$GPU")
expect_rc 1 pt-reset "$bridge"
assert_out_has "${bridge#0000:}"
unchanged "bad input"
pass

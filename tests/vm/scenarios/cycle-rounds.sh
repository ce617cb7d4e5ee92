# pt-vm: topology=console
# cycle-rounds.sh: the whole cycle of cycle-full, 20 rounds in a row, without
# drift: after each round the state equals round 1's: drivers, overrides,
# power states, command registers, decodes/owns, vtconsoles and fbcon's
# mapping, the DRM card and its connectors, the journal's content, and the
# number of error and warning lines in the kernel log. Odd rounds run the
# recipe as the shell pipeline of pt(7), even rounds as `pt-bind recover`
# with the same steps from /etc/pt/pt.conf; both must end in the same state.
. /pt-vm/lib.sh

gpu=$(full_bdf "$GPU")
ROUNDS=${PT_CYCLE_ROUNDS:-20}
write_recipe_conf

# round_state: everything that must not drift, one item a line.
round_state() {
  cycle_state
  vtconsoles
  echo "$(fbcon_state "$gpu")"
  echo "fb: $(for f in /sys/class/graphics/fb[0-9]*; do echo "$(basename "$f")=$(cat "$f/name")"; done | tr '\n' ' ')"
  echo "journal: $(if [ -f "$PT_JOURNAL" ]; then jq -cS . "$PT_JOURNAL"; else echo none; fi)"
  echo "kernel warnings and errors in dmesg: $(kernel_warnings)"
}

wait_for "pt-drm check $gpu >/dev/null 2>&1" 20 || fail "pt-drm check at boot" 0 "$(pt-drm check "$gpu" 2>&1)"
boot=$(cycle_state)
first=
total=0
r=1
while [ $r -le "$ROUNDS" ]; do
  t0=$(now_ns)
  pt-console release "$gpu" >/tmp/round.out 2>&1 || fail "round $r: pt-console release" 0 "$?: $(cat /tmp/round.out)"
  pt-bind detach "$SLOT" >>/tmp/round.out 2>&1 || fail "round $r: pt-bind detach" 0 "$?: $(cat /tmp/round.out)"
  vm_dirty "$gpu" >/dev/null
  vm_dirty "$AUD" >/dev/null
  if [ $((r % 2)) = 1 ]; then
    how=pipeline
    recipe_pipeline "$gpu" >>/tmp/round.out 2>&1 || fail "round $r: the recipe (pipeline)" 0 "$?: $(cat /tmp/round.out)"
  else
    how="pt-bind recover"
    pt-bind recover "$gpu" >>/tmp/round.out 2>&1 || fail "round $r: pt-bind recover" 0 "$?: $(cat /tmp/round.out)"
  fi
  ms=$(elapsed_ms "$t0")
  total=$(awk -v a="$total" -v b="$ms" 'BEGIN{print a + b}')
  now=$(round_state)
  if [ -z "$first" ]; then
    first=$now
    assert_cycle_healthy "$gpu" "$boot" >/dev/null
    say "round 1 ($how, $ms ms): the state every later round must equal"
    echo "$first" | sed 's/^/   /'
    kernel_warning_lines | sed "s/^/   (kernel, at round 1) /"
  elif [ "$now" != "$first" ]; then
    echo "$first" >/tmp/first.state
    echo "$now" >/tmp/now.state
    diff /tmp/first.state /tmp/now.state | sed 's/^/   /'
    echo "   the kernel's warnings and errors now:"
    kernel_warning_lines | sed 's/^/   | /'
    fail "state after round $r ($how)" "round 1's" "the lines above marked >"
  else
    echo "   round $r ($how): $ms ms, no drift"
  fi
  r=$((r + 1))
done
grep -q "recover $gpu: done" /tmp/round.out || [ "$ROUNDS" -lt 2 ] ||
  fail "last pt-bind recover" "recover $gpu: done" "$(cat /tmp/round.out)"
echo "   $ROUNDS rounds, mean $(awk -v t="$total" -v n="$ROUNDS" 'BEGIN{printf "%.0f", t / n}') ms per round (release to check)"
expect_rc 0 pt-drm check "$gpu"
pass

#!/usr/bin/env bash
# The whole cycle's wall time on the QEMU testbed (issue 6's speed section):
# pt's cycle against (a) the same kernel writes as a bare shell script and
# (b) a script in the style of the popular single-GPU passthrough hooks; and
# four GPUs cycled in parallel against one (quad topology). Both VM runs are
# under TCG. Benchmark figures, not tests: a missed target prints FAIL.
# Usage: bench/cycle.sh [--build DIR] [--runs N] [--only single|quad] [--raw PREFIX]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
runs=5 only= raw=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --raw) raw=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--runs N] [--only single|quad] [--raw PREFIX]" >&2; exit 2 ;;
  esac
done
for b in pt-bind pt-reset pt-drm pt-vgaarb pt-console pt-vm-standin; do
  [ -x "$build/bin/$b" ] || { echo "build $b first (cmake --build $build)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.0f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "-" }'; }
vm() { # vm NAME SCRIPT
  echo "host load average before $1: $(cut -d' ' -f1-3 /proc/loadavg)"
  PT_VM_QUIET=1 PT_VM_ENV="PT_BENCH_RUNS=$runs" "$here/../tests/vm/pt-vm" run --cache "$build/vm-cache" \
    --bin-dir "$build/bin" --scenario "$2" --name "bench-$1" --timeout 1800 >"$tmp/$1.out" 2>&1 || { cat "$tmp/$1.out"; exit 1; }
  echo "host load average after $1:  $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -z "$raw" ] || cp "$tmp/$1.out" "$raw.$1.out"
}
field() { # field FILE PATTERN KEY: the KEY=value of every BENCH line matching PATTERN
  grep -E "$2" "$1" | tr ' ' '\n' | sed -n "s/^$3=//p"
}

if [ "$only" != quad ]; then
  vm single "$here/cycle-guest.sh"
  o=$tmp/single.out
  echo "single GPU+audio cycle, kernel $(sed -n 's/^BENCH kernel //p' "$o"), TCG, $runs rounds"
  pt=$(field "$o" '^BENCH cycle pt ' total_ms | med)
  bare=$(field "$o" '^BENCH cycle bare ' total_ms | med)
  hook=$(field "$o" '^BENCH cycle hook ' total_ms | med)
  pt1=$(field "$o" '^BENCH cycle pt1 ' total_ms | med)
  for v in pt pt1 bare hook; do
    printf '  %-4s median %5s ms  (runs: %s)\n' "$v" "$(field "$o" "^BENCH cycle $v " total_ms | med)" \
      "$(field "$o" "^BENCH cycle $v " total_ms | tr '\n' ' ')"
  done
  printf '  pt steps, median ms:'
  for s in release detach standin reset attach wait vgaarb console check; do
    printf ' %s %s' "$s" "$(field "$o" '^BENCH cycle pt ' "$s" | med)"
  done
  echo
  for k in busybox_true_ms standin_help_ms pt_version_ms pt_version_kmod_preloaded_ms; do
    printf '  start-up + exit %s: median %s ms\n' "$k" "$(field "$o" '^BENCH startup ' "$k" | med)"
  done
  awk -v p="$pt" -v a="$bare" -v b="$hook" -v q="$pt1" 'BEGIN {
    printf "  pt / (a) bare = %.2f   target <= 1.2   %s\n", p / a, (p / a <= 1.2 ? "PASS" : "FAIL")
    printf "  pt1 (pt-bind recover) / (a) bare = %.2f   target <= 1.2   %s\n", q / a, (q / a <= 1.2 ? "PASS" : "FAIL")
    printf "  pt vs (b) hook: %s vs %s ms   target: faster   %s\n", p, b, (p < b ? "PASS" : "FAIL") }'
  # The recovery alone: from the reset on, against (a)'s writes from the reset on.
  rpt=$(field "$o" '^BENCH cycle pt ' recovery_ms | med)
  rpt1=$(field "$o" '^BENCH cycle pt1 ' recovery_ms | med)
  rbare=$(field "$o" '^BENCH cycle bare ' recovery_ms | med)
  for v in pt pt1 bare; do
    printf '  recovery %-4s median %5s ms  (runs: %s)\n' "$v" "$(field "$o" "^BENCH cycle $v " recovery_ms | med)" \
      "$(field "$o" "^BENCH cycle $v " recovery_ms | tr '\n' ' ')"
  done
  printf '  pt-bind recover steps, median ms (its own clock):'
  for s in reset attach drm-wait vgaarb console drm-check; do
    printf ' %s %s' "$s" "$(field "$o" '^BENCH cycle pt1 ' "r_$s" | med)"
  done
  echo
  awk -v p="$rpt" -v q="$rpt1" -v a="$rbare" 'BEGIN {
    printf "  recovery: pt-bind recover / (a) = %.2f   target <= 1.5   %s\n", q / a, (q / a <= 1.5 ? "PASS" : "FAIL")
    printf "  recovery: pipeline / (a) = %.2f\n", p / a }'
fi
if [ "$only" != single ]; then
  vm quad "$here/cycle-quad-guest.sh"
  o=$tmp/quad.out
  one=$(field "$o" '^BENCH quad one ' total_ms | med)
  four=$(field "$o" '^BENCH quad four ' total_ms | med)
  echo "quad: one GPU's cycle median $one ms, four in parallel median $four ms  (runs: $(field "$o" '^BENCH quad four ' total_ms | tr '\n' ' '))"
  batched=$(field "$o" '^BENCH quad batched ' total_ms | med)
  echo "quad: four in one batched pipeline median $batched ms  (runs: $(field "$o" '^BENCH quad batched ' total_ms | tr '\n' ' '))"
  r1=$(field "$o" '^BENCH quad recover-one ' total_ms | med)
  r4=$(field "$o" '^BENCH quad recover-four ' total_ms | med)
  echo "quad: pt-bind recover of one GPU median $r1 ms (runs: $(field "$o" '^BENCH quad recover-one ' total_ms | tr '\n' ' '))"
  echo "quad: pt-bind recover of four in one call median $r4 ms (runs: $(field "$o" '^BENCH quad recover-four ' total_ms | tr '\n' ' '))"
  echo "  guest vCPUs: $(sed -n 's/^BENCH cpus //p' "$o")"
  awk -v a="$one" -v b="$four" -v c="$batched" 'BEGIN {
    printf "  four pipelines / one = %.2f   target <= 1.5   %s\n", b / a, (b / a <= 1.5 ? "PASS" : "FAIL")
    printf "  batched / one = %.2f   target <= 1.5   %s\n", c / a, (c / a <= 1.5 ? "PASS" : "FAIL") }'
  awk -v a="$r1" -v b="$r4" 'BEGIN {
    printf "  recover four in one call / one = %.2f   target <= 1.5   %s\n", b / a, (b / a <= 1.5 ? "PASS" : "FAIL") }'
fi

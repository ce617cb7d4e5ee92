#!/usr/bin/env bash
# pt-reset benchmark on the real-kernel testbed (quad topology: four GPUs,
# each alone on its root port). Reports, as medians over the runs:
#   overhead  = pt-reset's wall time - the kernel's time in the reset write
#               (target: under 5 ms per device); split into process start-up,
#               the kernel's time in every write, and pt's own work, because
#               under TCG start-up alone is far above the target
#   speedup   = 4 x one reset / four resets in one call (target: >= 2.5)
# Usage: bench/reset.sh [--build DIR] [--runs N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
runs=5
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--runs N]" >&2; exit 2 ;;
  esac
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
PT_VM_QUIET=1 PT_BENCH_RUNS=$runs "$here/../tests/vm/pt-vm" run --cache "$build/vm-cache" --bin-dir "$build/bin" \
  --scenario "$here/reset-guest.sh" --name bench-reset --timeout 600 >"$out" 2>&1 || { cat "$out"; exit 1; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { grep "^BENCH $1 " "$out" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
one=$(field one wall_ms | median)
kern=$(field one reset_write_ms | median)
four=$(field four wall_ms | median)
writes=$(field one all_writes_ms | median)
start=$(field one startup_ms | median)
kernel=$(sed -n 's/^BENCH kernel //p' "$out")
awk -v one="$one" -v kern="$kern" -v four="$four" -v runs="$runs" -v k="$kernel" -v writes="$writes" -v start="$start" 'BEGIN {
  over = one - kern; speed = 4 * one / four; work = one - writes - start
  printf "pt-reset on the QEMU testbed (kernel %s, TCG), medians of %d runs\n", k, runs
  printf "  one GPU:   wall %.1f ms, kernel reset write %.1f ms, pt overhead %.1f ms   target < 5 ms   %s\n", one, kern, over, (over < 5 ? "PASS" : "FAIL")
  printf "    of which process start-up (pt-reset --version) %.1f ms, kernel time in all writes (power/control wake, reset_method, reset) %.1f ms: pt'\''s own work %.1f ms\n", start, writes, work
  printf "  four GPUs: wall %.1f ms in one call; speedup 4 x one / four = %.2f   target >= 2.5   %s\n", four, speed, (speed >= 2.5 ? "PASS" : "FAIL")
}'

#!/usr/bin/env bash
# bench/status.sh: wall time of `pt status` (text and --json) on one GPU
# with its audio function, on a fixture tree (bench/status-fixture.cpp).
# Target from issue 15: under 10 ms natively. A benchmark, not a test: it
# prints PASS/FAIL against the target and exits non-zero only when it could
# not measure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build="$here/../build"
runs=50 warmup=5
while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    -h|--help) echo "usage: $0 [--build DIR] [--runs N] [--warmup N]"; exit 0 ;;
    *) echo "$0: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() { echo "status.sh: $*" >&2; exit 1; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer"
pt="$build/bin/pt"
fixture_bin="$build/bench/pt-bench-status-fixture"
[[ -x $pt ]] || die "no pt at $pt (build the pt target first)"
[[ -x $fixture_bin ]] || die "no $fixture_bin (build the pt-bench-status-fixture target first)"
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 (\$EPOCHREALTIME)"

fx=$("$fixture_bin") || die "pt-bench-status-fixture failed"
[[ $fx == /tmp/pt-fixture-* ]] || die "the fixture builder printed '$fx'"
work=$(mktemp -d /tmp/pt-bench-XXXXXX)
trap 'rm -rf -- "$work" "$fx"' EXIT

"$pt" --root "$fx" --json status 01:00 >"$work/out" 2>&1 || die "pt status failed: $(cat "$work/out")"
grep -q '"bdf": "0000:01:00.1"' "$work/out" || die "pt status did not show the audio function"

now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((10#$t))"; }
measure() {  # NAME ARGS...: RUNS timed runs into $work/NAME
  local name=$1 i t0 t1
  shift
  for ((i = 0; i < warmup; i++)); do "$pt" "$@" >/dev/null 2>&1; done
  : >"$work/$name"
  for ((i = 0; i < runs; i++)); do
    t0=$(now_us)
    "$pt" "$@" >/dev/null 2>&1
    t1=$(now_us)
    awk -v d="$((t1 - t0))" 'BEGIN { printf "%.3f\n", d / 1000 }' >>"$work/$name"
  done
  sort -g "$work/$name" | awk -v n="$name" '{ v[NR] = $1; s += $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "  %-22s median %7.3f ms  mean %7.3f  min %7.3f  max %7.3f  %s\n", n, m, s / NR, v[1], v[NR],
                 (m < 10) ? "PASS (< 10 ms)" : "FAIL (target < 10 ms)" }'
}

echo "pt status on a GPU + audio fixture ($runs runs after $warmup warm-up, bash fork+exec included)"
echo "  $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r)"
measure "pt status" --root "$fx" status 01:00
measure "pt --json status" --root "$fx" --json status 01:00


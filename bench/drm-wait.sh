#!/usr/bin/env bash
# pt-drm wait latency on the real-kernel testbed: the time from the virtio
# GPU's /dev/dri/cardN appearing (inotify, monotonic clock) to `pt-drm wait`
# exiting, over several detach/attach cycles, next to the same figure for the
# least possible waiter (pt-bench-drm-floor, plain C + libdrm). Target: 20 ms.
# Usage: bench/drm-wait.sh [--build DIR] [--runs N] [--ftrace] [--raw FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
runs=5 ftrace=0 raw=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --ftrace) ftrace=1; shift ;;
    --raw) raw=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--runs N] [--ftrace] [--raw FILE]" >&2; exit 2 ;;
  esac
done
for b in pt-bench-drm-wait pt-bench-drm-floor pt-drm; do
  [ -x "$build/bin/$b" ] || { echo "build $b first (cmake --build $build)" >&2; exit 1; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "host load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
PT_VM_QUIET=1 PT_VM_ENV="PT_BENCH_RUNS=$runs PT_BENCH_FTRACE=$ftrace" \
  "$here/../tests/vm/pt-vm" run --cache "$build/vm-cache" --bin-dir "$build/bin" \
  --scenario "$here/drm-wait-guest.sh" --name bench-drm-wait --timeout 900 >"$out" 2>&1 || { cat "$out"; exit 1; }
echo "host load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$raw" ] || cp "$out" "$raw"
kernel=$(sed -n 's/^BENCH kernel //p' "$out")
echo "kernel $kernel under TCG, $runs runs of each waiter"
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "-" }'; }
for w in floor pt; do
  lat=$(sed -n "s/^BENCH $w [0-9]* .*latency_ms=\([-0-9.]*\).*/\1/p" "$out")
  printf '  %-5s card node -> exit: median %s ms  (runs: %s)\n' "$w" "$(printf '%s\n' "$lat" | med)" "$(echo $lat)"
done
# Per run: where the time after the node goes.
awk '
  /^BENCH (floor|pt) [0-9]+ / { w = $2; r = $3; for (i = 4; i <= NF; i++) { split($i, kv, "="); v[w, r, kv[1]] = kv[2] } runs[w, r] = 1 }
  /^BENCH trace-floor [0-9]+ FLOOR wait / { r = $3; for (i = 6; i <= NF; i++) { split($i, kv, "="); f[r, kv[1]] = kv[2] } }
  /^BENCH trace-pt [0-9]+ .*KMS read ok/ { r = $3; m = $0; sub(/.*monotonic /, "", m); sub(/ ms.*/, "", m); look[r] = m
                                           d = $0; sub(/.* in /, "", d); sub(/ ms.*/, "", d); rd[r] = d
                                           n = $0; sub(/.*look /, "", n); sub(/ .*/, "", n); looks[r] = n }
  END {
    for (k in runs) {
      split(k, p, SUBSEP); w = p[1]; r = p[2]; node = v[w, r, "node_monotonic_ms"]; ex = v[w, r, "exit_monotonic_ms"]
      if (w == "floor")
        printf "  floor run %s: node -> successful open %.1f ms, open %.1f, GetResources %.1f, close (lastclose) %.1f, close -> exit seen %.1f\n", r, f[r, "start"] - node, f[r, "open_ms"], f[r, "getres_ms"], f[r, "close_ms"], ex - f[r, "close_end"]
      else
        printf "  pt    run %s: node -> ready look %.1f ms (look %s), KMS read (open, GetResources, close) %.1f, read end -> exit seen %.1f\n", r, look[r] - node, looks[r], rd[r], ex - look[r] - rd[r]
    }
  }' "$out" | sort -k1,1 -k3n
grep '^BENCH read ' "$out" | awk '{ for (i = 4; i <= NF; i++) { split($i, kv, "="); s[$3, kv[1]] += kv[2] } n[$3]++ }
  END { for (h in n) printf "  live card, %s: open %.2f ms, GetResources %.2f ms, close %.2f ms (mean of %d)\n", (h == "alone" ? "no other opener (close runs lastclose)" : "held open by a shell (no lastclose)"), s[h, "open_ms"] / n[h], s[h, "getres_ms"] / n[h], s[h, "close_ms"] / n[h], n[h] }'
fl=$(sed -n 's/^BENCH startup .*floor_read_ms=\([0-9.]*\).*/\1/p' "$out" | med)
pv=$(sed -n 's/^BENCH startup .*pt_version_ms=\([0-9.]*\).*/\1/p' "$out" | med)
echo "  process start-up + exit, median: C floor (one read) $fl ms, pt-drm --version $pv ms"
[ "$ftrace" = 1 ] && grep -E '^BENCH ftrace-ftrace-(floor|pt) .*(drm_|do_exit|exit_mmap)' "$out" | sed 's/^BENCH //' || true

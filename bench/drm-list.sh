#!/usr/bin/env bash
# pt-drm list: cost on this host (real root, through libdrm) and on a fixture
# tree with --root (sysfs only), with hyperfine. Target: under 10 ms.
# Usage: bench/drm-list.sh [--build DIR] [--gpus N] [--runs N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
gpus=4
runs=50
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --gpus) gpus=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--gpus N] [--runs N]" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is not installed" >&2; exit 1; }
pt=$build/bin/pt-drm
[ -x "$pt" ] && [ -x "$build/bench/pt-bench-drm-fixture" ] || { echo "build pt-drm and pt-bench-drm-fixture first" >&2; exit 1; }
fx=$("$build/bench/pt-bench-drm-fixture" "$gpus")
res=$(mktemp)
trap 'rm -rf "$fx" "$res"' EXIT

cards=$( (ls -d /sys/class/drm/card[0-9]* 2>/dev/null || true) | wc -l)
hyperfine -N --warmup 5 --runs "$runs" --export-json "$res" \
  "$pt --json list" "$pt --root $fx --json list" >/dev/null 2>&1
ms() { jq -r ".results[$1] | \"\(.mean * 1000 | . * 100 | round / 100) ms (sd \(.stddev * 1000 | . * 100 | round / 100), min \(.min * 1000 | . * 100 | round / 100))\"" "$res"; }
mean() { jq -r ".results[$1].mean * 1000" "$res"; }
verdict() { awk -v m="$1" 'BEGIN { print (m < 10 ? "PASS" : "FAIL") }'; }
echo "pt-drm list --json, hyperfine, $runs runs each"
echo "  host, real root ($cards DRM cards here): $(ms 0)   target < 10 ms   $(verdict "$(mean 0)")"
echo "  fixture, --root, $gpus cards x 4 connectors: $(ms 1)   target < 10 ms   $(verdict "$(mean 1)")"
[ "$cards" -gt 0 ] || echo "  note: this host has no DRM devices, so the real-root run measures start-up, the sysfs scan and libdrm's drmGetDevices2 on an empty /dev/dri, not KMS reads"

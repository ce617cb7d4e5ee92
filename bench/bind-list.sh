#!/usr/bin/env bash
# bench/bind-list.sh: `pt-bind list --json` against `lspci -k` on the same
# N-device fixture tree, measured in one run.
#
# Targets (from the issue): pt-bind's median wall time at most 1.5 times
# lspci's, and pt-bind's peak RSS under 8 MiB. This is a benchmark, not a
# test: it prints PASS/FAIL against each target and exits 0 whenever it
# managed to measure; it exits non-zero only when it could not measure.
#
# Usually run through `cmake --build <build> --target bench`; see
# bench/README.md.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [options]
  --build DIR      build tree holding bin/pt-bind and bench/pt-bench-fixture
                   (default: <source>/build)
  --pt-bind PATH   pt-bind binary (default: BUILD/bin/pt-bind)
  --fixture PATH   pt-bench-fixture binary (default: BUILD/bench/pt-bench-fixture)
  --lspci PATH     lspci binary (default: lspci from PATH)
  --devices N      devices in the fixture tree (default 256)
  --warmup N       untimed runs of each command first (default 5)
  --runs N         timed runs of each command, interleaved (default 30)
  --rss-runs N     runs of each command under /usr/bin/time for peak RSS (default 5)
  --timer T        auto, hyperfine or shell (default auto: hyperfine when installed)
  --json FILE      also write the results to FILE as JSON
  --keep           leave the fixture tree on disk and print where it is
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build="$here/../build"
pt_bind="" fixture_bin="" lspci_bin="lspci"
devices=256 warmup=5 runs=30 rss_runs=5 timer=auto json_out="" keep=0

while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --pt-bind) pt_bind=$2; shift 2 ;;
    --fixture) fixture_bin=$2; shift 2 ;;
    --lspci) lspci_bin=$2; shift 2 ;;
    --devices) devices=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --rss-runs) rss_runs=$2; shift 2 ;;
    --timer) timer=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n $pt_bind ]] || pt_bind="$build/bin/pt-bind"
[[ -n $fixture_bin ]] || fixture_bin="$build/bench/pt-bench-fixture"

die() { echo "bind-list.sh: $*" >&2; exit 1; }
for n in devices warmup runs rss_runs; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "--${n/_/-} must be a non-negative integer, got '${!n}'"
done
((runs >= 1)) || die "--runs must be at least 1"
((rss_runs >= 1)) || die "--rss-runs must be at least 1"
[[ -x $pt_bind ]] || die "no pt-bind at $pt_bind (build the pt-bind target first)"
[[ -x $fixture_bin ]] || die "no pt-bench-fixture at $fixture_bin (build the pt-bench-fixture target first)"
lspci_path=$(command -v "$lspci_bin") || die "lspci not found (apt-get install pciutils)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found; peak RSS needs GNU time (apt-get install time)"

case "$timer" in
  auto) if command -v hyperfine >/dev/null && command -v jq >/dev/null; then timer=hyperfine; else timer=shell; fi ;;
  hyperfine) if ! command -v hyperfine >/dev/null || ! command -v jq >/dev/null; then
               die "--timer hyperfine needs hyperfine and jq installed"
             fi ;;
  shell) ;;
  *) die "--timer must be auto, hyperfine or shell" ;;
esac

# ---- the fixture tree ------------------------------------------------------
fx=$("$fixture_bin" "$devices") || die "pt-bench-fixture failed"
[[ $fx == /tmp/pt-fixture-* && -d $fx/sys/bus/pci/devices ]] || die "pt-bench-fixture printed '$fx', not a fixture tree"
work=$(mktemp -d /tmp/pt-bench-XXXXXX)
cleanup() {
  rm -rf -- "$work"
  if ((keep)); then
    echo "fixture kept at $fx"
  else
    rm -rf -- "$fx"
  fi
}
trap cleanup EXIT

pt_cmd=("$pt_bind" --root "$fx" list --json)
# Both read the same, full-size pci.ids: pt-bind takes its names from the
# tree's copy under --root (the fixture writes a small excerpt), lspci from -i.
ids=/usr/share/misc/pci.ids
[[ -f $ids ]] || die "no $ids to name the devices with (apt-get install pci.ids)"
cp "$ids" "$fx/usr/share/misc/pci.ids"
lspci_cmd=("$lspci_path" -k -D -i "$fx/usr/share/misc/pci.ids" -A linux-sysfs -O "sysfs.path=$fx/sys/bus/pci")

# ---- sanity: both commands work and see the whole tree ---------------------
"${pt_cmd[@]}" >"$work/pt.out" 2>"$work/pt.err" || die "pt-bind list --json failed: $(cat "$work/pt.err")"
"${lspci_cmd[@]}" >"$work/lspci.out" 2>"$work/lspci.err" || die "lspci failed: $(cat "$work/lspci.err")"
pt_seen=$(grep -c '"device": "' "$work/pt.out" || true)
lspci_seen=$(grep -c '^[0-9a-f]\{4\}:' "$work/lspci.out" || true)
[[ $pt_seen == "$devices" ]] || die "pt-bind listed $pt_seen devices, the fixture has $devices"
[[ $lspci_seen == "$devices" ]] || die "lspci listed $lspci_seen devices, the fixture has $devices"
# lspci -k resolves modules with libkmod against the *host's* /lib/modules,
# not the fixture's; when that fails it says so once and skips every lookup.
lspci_modules=$(grep -c 'Kernel modules:' "$work/lspci.out" || true)
lspci_kmod_warning=$(grep -m1 -i 'libkmod' "$work/lspci.err" || true)

# ---- wall time, interleaved ------------------------------------------------
# Each iteration runs both commands back to back, swapping which goes first
# every time, so drift in machine load, caches or CPU clock hits both alike.
: >"$work/pt.times"
: >"$work/lspci.times"
for ((i = 0; i < warmup; i++)); do
  "${pt_cmd[@]}" >/dev/null 2>&1
  "${lspci_cmd[@]}" >/dev/null 2>&1
done

q() { local s; printf -v s '%q ' "$@"; printf '%s' "${s% }"; }
pt_q=$(q "${pt_cmd[@]}")
lspci_q=$(q "${lspci_cmd[@]}")

if [[ $timer == hyperfine ]]; then
  # One hyperfine call per iteration, one run of each command, no shell in
  # between (-N), output to /dev/null (hyperfine's default).
  timer_desc="hyperfine $(hyperfine --version | awk '{print $2}') -N, 1 run per command per iteration"
  for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then first=$pt_q second=$lspci_q; else first=$lspci_q second=$pt_q; fi
    hyperfine -N --style none --runs 1 --export-json "$work/it.json" -- "$first" "$second" >/dev/null 2>"$work/hf.err" ||
      die "hyperfine failed: $(cat "$work/hf.err")"
    jq -r --arg pt "$pt_q" '.results[] | "\(if .command == $pt then "pt" else "lspci" end) \(.times[])"' \
      "$work/it.json" | while read -r who t; do
      awk -v t="$t" 'BEGIN { printf "%.6f\n", t * 1000 }' >>"$work/$who.times"
    done
  done
else
  # Bash 5's $EPOCHREALTIME is a builtin (no fork inside the measured span);
  # older shells fall back to date +%s%N, whose own fork is then included.
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    timer_desc="bash \$EPOCHREALTIME loop (includes bash fork+exec)"
    now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((10#$t))"; }
  else
    timer_desc="date +%s%N loop (includes bash fork+exec and date's fork)"
    now_us() { printf '%s' "$(($(date +%s%N) / 1000))"; }
  fi
  run_one() {  # WHO CMD...
    local who=$1 t0 t1
    shift
    t0=$(now_us)
    "$@" >/dev/null 2>&1
    t1=$(now_us)
    awk -v d="$((t1 - t0))" 'BEGIN { printf "%.3f\n", d / 1000 }' >>"$work/$who.times"
  }
  for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then
      run_one pt "${pt_cmd[@]}"; run_one lspci "${lspci_cmd[@]}"
    else
      run_one lspci "${lspci_cmd[@]}"; run_one pt "${pt_cmd[@]}"
    fi
  done
fi

# stats FILE -> "median mean min max" in ms
stats() {
  sort -g "$1" | awk '{ v[NR] = $1; s += $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.3f %.3f %.3f %.3f\n", m, s / NR, v[1], v[NR] }'
}
pt_stats=$(stats "$work/pt.times")
ls_stats=$(stats "$work/lspci.times")
read -r pt_med pt_mean pt_min pt_max <<<"$pt_stats"
read -r ls_med ls_mean ls_min ls_max <<<"$ls_stats"
pt_n=$(wc -l <"$work/pt.times")
ls_n=$(wc -l <"$work/lspci.times")

# ---- peak RSS ------------------------------------------------------------
# GNU time's %M is the process's maximum resident set size in KiB.
rss() {  # CMD... -> "max median" in KiB over rss_runs runs
  local i f="$work/rss.$RANDOM"
  : >"$f"
  for ((i = 0; i < rss_runs; i++)); do
    /usr/bin/time -f %M -o "$f.one" "$@" >/dev/null 2>&1 || die "$1 failed under /usr/bin/time"
    tail -n1 "$f.one" >>"$f"
  done
  sort -n "$f" | awk '{ v[NR] = $1 } END { printf "%d %d\n", v[NR], v[int((NR + 1) / 2)] }'
}
pt_rss_all=$(rss "${pt_cmd[@]}")
ls_rss_all=$(rss "${lspci_cmd[@]}")
read -r pt_rss pt_rss_med <<<"$pt_rss_all"
read -r ls_rss ls_rss_med <<<"$ls_rss_all"

# ---- verdicts ------------------------------------------------------------
ratio=$(awk -v a="$pt_med" -v b="$ls_med" 'BEGIN { printf "%.3f", a / b }')
ratio_target=1.5
rss_target_kib=8192
ratio_ok=$(awk -v r="$ratio" -v t="$ratio_target" 'BEGIN { print (r <= t) ? "true" : "false" }')
rss_ok=$( ((pt_rss < rss_target_kib)) && echo true || echo false)
verdict() { [[ $1 == true ]] && echo PASS || echo FAIL; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
pt_version=$("$pt_bind" --version 2>/dev/null | head -n1 || true)
lspci_version=$("$lspci_path" --version 2>/dev/null | awk '{ print $3 }' || true)

echo
echo "pt-bind list --json vs lspci -k on a $devices-device fixture"
echo "  $when, $(nproc) CPUs${cpu:+ ($cpu)}, kernel $(uname -r)"
echo "  $runs timed runs of each, interleaved, after $warmup warm-up runs; timer: $timer_desc"
echo "  peak RSS: max of $rss_runs runs of each under /usr/bin/time -f %M"
echo
printf '  %-26s %9s %9s %9s %9s %12s\n' "command" "median" "mean" "min" "max" "peak RSS"
printf '  %-26s %6.2f ms %6.2f ms %6.2f ms %6.2f ms %7s MiB\n' "pt-bind list --json" \
  "$pt_med" "$pt_mean" "$pt_min" "$pt_max" "$(mib "$pt_rss")"
printf '  %-26s %6.2f ms %6.2f ms %6.2f ms %6.2f ms %7s MiB\n' "lspci -k -D -A linux-sysfs" \
  "$ls_med" "$ls_mean" "$ls_min" "$ls_max" "$(mib "$ls_rss")"
echo
printf '  %-34s %8s   target <= %-8s %s\n' "time ratio pt-bind/lspci (medians)" "$ratio" "$ratio_target" "$(verdict "$ratio_ok")"
printf '  %-34s %8s   target <  %-8s %s\n' "pt-bind peak RSS (MiB)" "$(mib "$pt_rss")" "8.00" "$(verdict "$rss_ok")"
echo "  (peak RSS in KiB: pt-bind $pt_rss, lspci $ls_rss; medians $pt_rss_med / $ls_rss_med)"
if ((lspci_modules == 0)); then
  echo "  note: lspci -k printed no 'Kernel modules:' lines, so it did no module lookups${lspci_kmod_warning:+ ($lspci_kmod_warning)}"
fi

if [[ -n $json_out ]]; then
  js() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
  arr() { paste -sd, "$1"; }
  cat >"$json_out" <<EOF
{
  "benchmark": "bind-list",
  "date": $(js "$when"),
  "machine": {"cpus": $(nproc), "cpu": $(js "$cpu"), "kernel": $(js "$(uname -r)")},
  "devices": $devices,
  "warmup": $warmup,
  "runs": $runs,
  "timer": $(js "$timer_desc"),
  "pt_bind": {
    "command": $(js "$pt_q"),
    "version": $(js "$pt_version"),
    "runs": $pt_n,
    "median_ms": $pt_med, "mean_ms": $pt_mean, "min_ms": $pt_min, "max_ms": $pt_max,
    "times_ms": [$(arr "$work/pt.times")],
    "peak_rss_kib": $pt_rss, "median_rss_kib": $pt_rss_med
  },
  "lspci": {
    "command": $(js "$lspci_q"),
    "version": $(js "$lspci_version"),
    "runs": $ls_n,
    "median_ms": $ls_med, "mean_ms": $ls_mean, "min_ms": $ls_min, "max_ms": $ls_max,
    "times_ms": [$(arr "$work/lspci.times")],
    "peak_rss_kib": $ls_rss, "median_rss_kib": $ls_rss_med,
    "module_lookups": $( ((lspci_modules > 0)) && echo true || echo false),
    "stderr": $(js "$lspci_kmod_warning")
  },
  "targets": {
    "time_ratio": {"value": $ratio, "max": $ratio_target, "pass": $ratio_ok},
    "pt_bind_peak_rss_kib": {"value": $pt_rss, "max_exclusive": $rss_target_kib, "pass": $rss_ok}
  }
}
EOF
  echo "  results written to $json_out"
fi

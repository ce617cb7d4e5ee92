#!/bin/sh
# seam-planted.sh SRC_DIR: seam-check.sh passes on a copy of the tree and
# fails once a direct open of the system is planted in a copy of a source:
# the check is checked against the thing it exists to catch.
set -eu
src=${1:?usage: seam-planted.sh SRC_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/tools"
cp -r "$src/src/pt" "$tmp/src/pt"
cp -r "$src/tools/." "$tmp/tools/"

"$here/seam-check.sh" "$tmp" >"$tmp/clean.out" 2>&1 || {
  echo "seam-planted: the unplanted copy already fails:"; cat "$tmp/clean.out"; exit 1
}

# Each planting: a function appended to a copy of a library source, a tool
# main and a header-only helper; the check must name its file and line.
plant() {  # FILE CODE
  file=$1 code=$2
  rm -rf "$tmp/case" && mkdir -p "$tmp/case/src" && cp -r "$tmp/src/pt" "$tmp/case/src/pt" && cp -r "$tmp/tools" "$tmp/case/tools"
  printf '\nnamespace pt {\nint planted_%s() {\n%s\n}\n}  // namespace pt\n' "$(echo "$file" | tr -c 'a-z0-9\n' _)" "$code" >>"$tmp/case/$file"
  line=$(($(wc -l <"$tmp/case/$file") - 2))
  if "$here/seam-check.sh" "$tmp/case" >"$tmp/case.out" 2>&1; then
    echo "seam-planted: not caught in $file: $code"; exit 1
  fi
  grep -q "^$file:$line: " "$tmp/case.out" || {
    echo "seam-planted: $file:$line not named for: $code"; cat "$tmp/case.out"; exit 1
  }
  echo "caught $file:$line: $code"
}

plant src/pt/bind.cpp '  return ::open("/sys/bus/pci/rescan", O_WRONLY | O_CLOEXEC);'
plant src/pt/pci.cpp '  const std::string p = "/dev/dri/card" + std::to_string(0);
  return ::open(p.c_str(), O_RDONLY);'
plant src/pt/holders.cpp '  return read_attr("/proc/mounts") ? 1 : 0;'
plant tools/pt-bind.cpp '  std::ifstream in("/run/pt/journal.json"); return in ? 1 : 0;'
plant src/pt/vgaarb.cpp '  struct stat st {}; return ::stat(kArbiterPath, &st);'
echo "seam-planted: every planted direct open was caught"

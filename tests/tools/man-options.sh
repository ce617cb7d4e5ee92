#!/bin/sh
# man-options.sh TOOL MANPAGE: the long options CLI11 defines for TOOL (its
# --help and every subcommand's) are exactly the ones the OPTIONS section of
# MANPAGE lists as tags. Prints what one has and the other lacks.
set -eu
tool=$1 page=$2
cli=$(mktemp) man=$(mktemp)
trap 'rm -f "$cli" "$man"' EXIT

options_of() { "$@" --help | sed -n '/^Options:/,/^[A-Z][a-z]*:/p' | grep -oE '(^|[ ,])--[a-z][a-z-]*' | tr -d ' ,'; }
{
  options_of "$tool"
  # The section ends at the blank line before the footer (forms, examples).
  for sub in $("$tool" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && /^  [^ ]/ { print $1 }'); do
    options_of "$tool" "$sub"
  done
} | sort -u >"$cli"

# Tags are the line after each .TP in the OPTIONS section.
sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$page" | awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' |
  sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z-]*' | sort -u >"$man"

if ! diff_out=$(diff "$cli" "$man"); then
  echo "$page and $(basename "$tool") --help disagree (< only in --help, > only in the page):"
  echo "$diff_out" | grep '^[<>]'
  exit 1
fi
echo "$(basename "$tool"): $(wc -l <"$cli") options, the same in --help and $page"

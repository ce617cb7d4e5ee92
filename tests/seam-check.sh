#!/bin/sh
# seam-check.sh SRC_DIR: fails when code in SRC_DIR/src/pt or SRC_DIR/tools
# opens or names a /sys, /dev, /proc or /run path without going through
# pt::Root (ARCHITECTURE.md, "The seam"). Prints file:line: why: code.
#
# A file-system call (open, stat, opendir, readlink, ifstream, inotify_add_watch,
# fs::canonical, ..., and the string-path overloads of the sysfs.hpp read
# helpers) is flagged when its path argument
#   - is a string literal "/sys/...", "/dev/...", "/proc/...", "/run/...", or
#     a k-constant defined as one (kArbiterPath), or
#   - is a variable whose definition earlier in the same function is built
#     from such a literal or constant and not from root.path(...).
# A path argument built with root.path(...) (or root_.path, ctx.root.path), or
# passed with a Root to a (Root, absolute path) helper, passes. Arguments of
# unknown origin (parameters, members) pass: the check is about spelling a
# system path at the call, which is how a direct open slips in.
#
# The seam itself is exempt: root.cpp, sysfs.cpp, kernel_writer.cpp,
# trusted_file.cpp. Single exceptions are in seam-allow.txt next to this
# script ("file|code substring|why").
set -eu
src=${1:?usage: seam-check.sh SRC_DIR}
here=$(cd "$(dirname "$0")" && pwd)
allow=${SEAM_ALLOW:-$here/seam-allow.txt}

files=$(find "$src/src/pt" "$src/tools" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' \) | sort)
[ -n "$files" ] || { echo "seam-check: no sources under $src" >&2; exit 2; }

# Constants spelled as a system path: inline constexpr const char* kX = "/dev/...".
consts=$(cat $files | sed -n 's/.*\(k[A-Z][A-Za-z0-9_]*\)[ \t]*=[ \t]*"\/\(sys\|dev\|proc\|run\)\([/"]\).*/\1/p' | sort -u | tr '\n' ' ')

status=0
for f in $files; do
  rel=${f#"$src"/}
  case $rel in
    src/pt/root.cpp | src/pt/sysfs.cpp | src/pt/kernel_writer.cpp | src/pt/trusted_file.cpp) continue ;;
  esac
  out=$(awk -v rel="$rel" -v consts="$consts" -v allowfile="$allow" '
    function strip(s) {
      # Comments out, so prose naming /sys is not code.
      sub(/^[ \t]*\/\/.*$/, "", s)
      sub(/[ \t]\/\/ .*$/, "", s)
      return s
    }
    # The text inside the parentheses that open S (strings skipped), so that
    # a literal elsewhere on the line is not taken for the argument.
    function inner(s,   n, k, c, depth, q) {
      n = length(s); depth = 1; q = 0
      for (k = 1; k <= n; k++) {
        c = substr(s, k, 1)
        if (q) { if (c == "\\") k++; else if (c == "\"") q = 0; continue }
        if (c == "\"") q = 1
        else if (c == "(" || c == "{") depth++
        else if (c == ")" || c == "}") { if (--depth == 0) return substr(s, 1, k - 1) }
      }
      return s
    }
    # A literal that starts a path ("/sys/..." first, not "/dev" appended to
    # a sysfs directory).
    function syslit(s) { return s ~ /(^|[(,={:?][ \t]*|return[ \t]+)"\/(sys|dev|proc|run)[\/"]/ || s ~ /^[ \t]*"\/(sys|dev|proc|run)[\/"]/ }
    function sysconst(s,   n, i, c) {
      n = split(consts, c, " ")
      for (i = 1; i <= n; i++)
        if (s ~ ("(^|[^A-Za-z0-9_])" c[i] "([^A-Za-z0-9_]|$)")) return 1
      return 0
    }
    function rooted(s) { return s ~ /(^|[^A-Za-z0-9_])(root|root_|ctx\.root|root\(\)|o\.root|options\.root)\.path[ \t]*\(/ || s ~ /\.path[ \t]*\(/ }
    BEGIN {
      calls = "(open|open64|openat|fopen|opendir|stat|lstat|fstatat|statx|access|faccessat|readlink|readlinkat|realpath|canonical|weakly_canonical|exists|is_directory|is_regular_file|is_symlink|read_symlink|directory_iterator|recursive_directory_iterator|inotify_add_watch|mkdir|unlink|rmdir|rename|symlink|chmod|chown|truncate|scandir|mkfifo|mknod|read_file|read_attr|link_basename|read_link|list_dir|path_exists)"
      while ((getline a < allowfile) > 0) {
        if (a ~ /^[ \t]*(#|$)/) continue
        split(a, p, "|")
        na++; afile[na] = p[1]; asub[na] = p[2]
      }
    }
    { raw[NR] = $0; line[NR] = strip($0) }
    END {
      for (i = 1; i <= NR; i++) {
        s = line[i]
        if (s == "") continue
        # ifstream f("/proc/x"), std::ofstream out{path}
        decl = match(s, /(ifstream|ofstream|fstream)[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*[({]/)
        call = match(s, "(^|[^A-Za-z0-9_])" calls "[ \t]*\\(")
        if (!decl && !call) continue
        if (!decl) {
          # A method of an object named like a call (root.open, x.exists) is not one.
          pre = substr(s, RSTART, 1)
          if (pre == ".") continue
          if (RSTART > 1 && substr(s, RSTART - 1, 2) ~ /->/) continue
        }
        name = substr(s, RSTART, RLENGTH)
        arg = substr(s, RSTART + RLENGTH)
        if (i < NR) arg = arg " " line[i + 1]
        arg = inner(arg)
        # The fd-first calls: the path is the second argument.
        if (name ~ /(openat|readlinkat|fstatat|faccessat|inotify_add_watch)[ \t]*\($/) sub(/^[^,]*,/, "", arg)
        # Function definitions and declarations: a type before the name.
        if (!decl && s ~ ("^[A-Za-z].*[A-Za-z_>&*][ \t]+" calls "[ \t]*\\(") && s !~ /(=|return|if|while)[ \t(]/) continue
        # (Root, absolute path) helpers: the first argument is a Root.
        if (name ~ /(read_file|read_attr|link_basename|read_link|list_dir|path_exists)[ \t]*\($/ &&
            arg ~ /^[ \t]*(\*?[A-Za-z_][A-Za-z0-9_.>-]*(root|root_|root\(\))|[A-Za-z_]*[Rr]oot[A-Za-z_]*)[ \t]*,/) continue
        why = ""
        if (rooted(arg)) {
          # built from root.path(...) at the call
        } else if (syslit(arg) || sysconst(arg)) {
          why = "system path at the call"
        } else if (match(arg, /^[ \t&*(]*(std::string|std::filesystem::path|fs::path|std::string_view)?[ \t({]*[A-Za-z_][A-Za-z0-9_]*/)) {
          id = substr(arg, RSTART, RLENGTH)
          sub(/^.*[^A-Za-z0-9_]/, "", id)
          # The nearest definition or assignment of ID above, within the function.
          for (j = i - 1; j > 0 && j > i - 120; j--) {
            if (raw[j] ~ /^}/) break
            d = line[j]
            if (d ~ ("(^|[^A-Za-z0-9_.>])" id "[ \t]*(=[^=]|\\(|\\{)") && d !~ ("(^|[^A-Za-z0-9_])" id "[ \t]*\\(.*\\)[ \t]*(const)?[ \t]*\\{?[ \t]*$") ) {
              def = d " " line[j + 1]
              if (!rooted(def) && (syslit(def) || sysconst(def)))
                why = id " is a system path not built by root.path (line " j ")"
              break
            }
          }
        }
        if (why == "") continue
        allowed = 0
        for (k = 1; k <= na; k++)
          if ((afile[k] == rel || afile[k] == "*") && index(raw[i], asub[k])) allowed = 1
        if (allowed) continue
        t = raw[i]; sub(/^[ \t]+/, "", t)
        printf "%s:%d: %s: %s\n", rel, i, why, t
      }
    }' "$f")
  if [ -n "$out" ]; then
    echo "$out"
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "seam-check: the lines above reach the system around pt::Root; build the path with root.path(\"/sys/...\") or use a (Root, absolute path) helper from sysfs.hpp" >&2
fi
exit $status

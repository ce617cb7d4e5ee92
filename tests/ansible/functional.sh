#!/bin/bash
# functional.sh SRCDIR BINDIR FIXTURE: runs tests/ansible/functional.yml
# with ansible-playbook -c local against the built tools in BINDIR on
# fixture trees that FIXTURE (pt-ansible-fixture) writes, while another
# process holds the pt lock of one of them; then checks that the facts,
# check-mode, already-in-state, refused and locked tasks left every tree
# they ran on file for file as it began.
set -u
src=${1:?usage: functional.sh SRCDIR BINDIR FIXTURE}
bin=${2:?usage: functional.sh SRCDIR BINDIR FIXTURE}
fixture=${3:?usage: functional.sh SRCDIR BINDIR FIXTURE}
python=/usr/bin/python3
trees=()
holder=
cleanup() {
  [[ -n $holder ]] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
  for t in "${trees[@]}"; do rm -rf "$t"; done
}
trap cleanup EXIT
tree() {
  local t
  t=$("$fixture" "$1") || exit 1
  trees+=("$t")
  # The state directory as pt makes it, so the lock file can be held.
  mkdir -m 0700 -p "$t/run/pt"
  : >"$t/run/pt/lock"
  echo "$t"
}
# Every path with its type, mode and link target, and every file's content.
snapshot() {
  (cd "$1" && find . -printf '%y %m %p -> %l\n' | LC_ALL=C sort && find . -type f -exec sha1sum {} + | LC_ALL=C sort)
}
host=$(tree host)
vfio=$(tree vfio)
locked=$(tree host)
static=$(tree host)
conf=$(tree vfio)
display=$(tree display)
display_static=$(tree display)
mkdir -p "$conf/etc/pt"
for t in "$host" "$vfio" "$locked" "$display"; do snapshot "$t" >"$t.before"; trees+=("$t.before"); done

# Another pt command, as pt sees one: a process with an flock on the lock.
$python -c 'import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(300)' "$locked/run/pt/lock" &
holder=$!
for _ in $(seq 100); do flock -n "$locked/run/pt/lock" true || break; sleep 0.05; done
flock -n "$locked/run/pt/lock" true && { echo "FAIL: the lock holder did not take the lock"; exit 1; }

export ANSIBLE_COLLECTIONS_PATH=$src/contrib/ansible ANSIBLE_COLLECTIONS_PATHS=$src/contrib/ansible
export ANSIBLE_PYTHON_INTERPRETER=$python ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=false ANSIBLE_LOCAL_TEMP=$(mktemp -d) ANSIBLE_HOME=$(mktemp -d)
trees+=("$ANSIBLE_LOCAL_TEMP" "$ANSIBLE_HOME")
ansible-playbook -c local -i localhost, "$src/tests/ansible/functional.yml" \
  -e "pt_bin_dir=$bin pt_host=$host pt_vfio=$vfio pt_locked=$locked pt_static=$static" \
  -e "pt_conf=$conf pt_collections=$src/contrib/ansible pt_display=$display pt_display_static=$display_static"
rc=$?
if [[ $rc -ne 0 ]]; then
  echo "FAIL: ansible-playbook exited $rc"
  exit 1
fi
failures=0
# check mode, nothing to install, no pt.conf, no initramfs: see role_args.yml.
ansible-playbook --check -c local -i localhost, "$src/tests/ansible/role_args.yml" >"$ANSIBLE_LOCAL_TEMP/role.out" 2>&1
rc=$?
if [[ $rc -ne 0 ]] && grep -q "missing required arguments: bdf found in pt_devices" "$ANSIBLE_LOCAL_TEMP/role.out"; then
  echo "ok: the role's argument spec refuses a device without bdf"
else
  echo "FAIL: the role took a device without bdf (exit $rc):"
  cat "$ANSIBLE_LOCAL_TEMP/role.out"
  failures=$((failures + 1))
fi
for t in "$host" "$vfio" "$locked" "$display"; do
  if ! snapshot "$t" | diff -u "$t.before" - >"$t.diff"; then
    echo "FAIL: $t changed:"
    cat "$t.diff"
    failures=$((failures + 1))
  fi
  rm -f "$t.diff"
done
[[ $failures -eq 0 ]] && echo "ok: the facts, check-mode, already-in-state, refused and locked tasks changed no file"
exit $((failures > 0))

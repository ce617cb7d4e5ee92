#!/bin/bash
# sanity.sh SRCDIR: the checks ansible-test sanity makes that run offline
# here, on a copy of the collection (ansible-test writes tests/output into
# the collection it checks): every plugin compiles; ansible-doc renders both
# modules and the role; each module documents exactly its argument_spec
# (doc_check.py, standing in for validate-modules, whose venv needs pip from
# the network); and ansible-test's own offline tests.
set -u
src=${1:?usage: sanity.sh SRCDIR}
python=/usr/bin/python3
coll=$src/contrib/ansible/ansible_collections/pt/passthrough
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
fail() {
  echo "FAIL: $1"
  failures=$((failures + 1))
}

# Compiled in memory: py_compile would leave __pycache__ in the source tree.
plugins=("$coll"/plugins/modules/*.py "$coll"/plugins/module_utils/*.py)
for f in "${plugins[@]}"; do
  $python -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$f" || fail "$f does not compile"
done
echo "ok: ${#plugins[@]} plugins compile"

export ANSIBLE_COLLECTIONS_PATH=$src/contrib/ansible ANSIBLE_COLLECTIONS_PATHS=$src/contrib/ansible
export ANSIBLE_NOCOLOR=1 ANSIBLE_HOME=$T/home ANSIBLE_LOCAL_TEMP=$T/tmp
for m in pt_device pt_facts; do
  if ansible-doc -t module "pt.passthrough.$m" >"$T/doc" 2>&1 && grep -q "^> PT.PASSTHROUGH.${m^^} " "$T/doc" &&
    grep -q '^EXAMPLES:' "$T/doc" && grep -q '^RETURN VALUES:' "$T/doc"; then
    echo "ok: ansible-doc renders pt.passthrough.$m"
  else
    fail "ansible-doc -t module pt.passthrough.$m"
    cat "$T/doc"
  fi
done
if ansible-doc -t role pt.passthrough.pt >"$T/doc" 2>&1 && grep -q 'pt_devices' "$T/doc"; then
  echo "ok: ansible-doc renders the role pt.passthrough.pt"
else
  fail "ansible-doc -t role pt.passthrough.pt"
  cat "$T/doc"
fi
# ansible-doc must list both modules as the collection's.
ansible-doc -t module -l pt.passthrough >"$T/list" 2>&1
for m in pt_device pt_facts; do
  grep -q "^pt.passthrough.$m " "$T/list" || fail "ansible-doc -l pt.passthrough does not list $m"
done

$python "$src/tests/ansible/doc_check.py" "$src/contrib/ansible" || fail "doc_check.py"

# ansible-test's tests that need no venv (pep8, pylint, yamllint, import,
# validate-modules and ansible-doc fetch pip from the network).
mkdir -p "$T/c/ansible_collections/pt"
cp -r "$coll" "$T/c/ansible_collections/pt/passthrough"
tests=(compile future-import-boilerplate metaclass-boilerplate shebang line-endings no-assert empty-init
  action-plugin-docs no-basestring no-dict-iteritems no-dict-iterkeys no-dict-itervalues no-get-exception
  no-illegal-filenames no-main-display no-smart-quotes no-unicode-literals replace-urlopen symlinks
  use-argspec-type-path use-compat-six ignores)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
if (cd "$T/c/ansible_collections/pt/passthrough" && ansible-test sanity --python 3.11 --color no "${args[@]}") >"$T/sanity" 2>&1; then
  echo "ok: ansible-test sanity: ${tests[*]}"
else
  fail "ansible-test sanity"
  cat "$T/sanity"
fi
exit $((failures > 0))

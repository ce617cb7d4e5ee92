#!/usr/bin/python3
"""doc_check.py COLLECTIONS_DIR: each module of pt.passthrough documents
exactly the options its AnsibleModule takes (name, type, required, default,
choices, elements), and its EXAMPLES and RETURN are YAML; the role's
meta/argument_specs.yml names every variable of defaults/main.yml.

ansible-test's validate-modules checks the same, but needs a venv it fetches
pip for; this runs offline on the Debian packages alone.
"""

import glob
import importlib
import os
import sys

import yaml

# Importing the modules must leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True

root = os.path.abspath(sys.argv[1])
sys.path.insert(0, root)
coll = os.path.join(root, 'ansible_collections', 'pt', 'passthrough')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


class Captured(Exception):
    def __init__(self, kwargs):
        super().__init__('captured')
        self.kwargs = kwargs


def capture_spec(modname):
    """The argument_spec main() hands AnsibleModule, as validate-modules finds it."""
    import ansible.module_utils.basic as basic
    mod = importlib.import_module(modname)
    real = basic.AnsibleModule.__init__

    def fake(self, *args, **kwargs):
        raise Captured(kwargs)

    basic.AnsibleModule.__init__ = fake
    try:
        mod.main()
    except Captured as c:
        return mod, c.kwargs
    finally:
        basic.AnsibleModule.__init__ = real
    raise AssertionError(modname + ': main() made no AnsibleModule')


def compare(where, doc_opts, spec):
    doc_opts = doc_opts or {}
    for name in sorted(set(doc_opts) | set(spec)):
        if name not in spec:
            fail('%s: option %s is documented but not in the argument_spec' % (where, name))
            continue
        if name not in doc_opts:
            fail('%s: option %s is in the argument_spec but not documented' % (where, name))
            continue
        d, s = doc_opts[name], spec[name]
        if not d.get('description'):
            fail('%s: option %s has no description' % (where, name))
        checks = (('type', 'str'), ('required', False), ('default', None), ('choices', None), ('elements', None))
        for key, unset in checks:
            dv, sv = d.get(key, unset), s.get(key, unset)
            if dv != sv:
                fail('%s: option %s: %s is %r in DOCUMENTATION but %r in the argument_spec' % (where, name, key, dv, sv))
        if 'options' in s or 'options' in d:
            compare('%s.%s' % (where, name), d.get('options'), s.get('options') or {})


modules = sorted(glob.glob(os.path.join(coll, 'plugins', 'modules', '*.py')))
if not modules:
    fail('no modules under ' + coll)
for path in modules:
    name = os.path.splitext(os.path.basename(path))[0]
    mod, kwargs = capture_spec('ansible_collections.pt.passthrough.plugins.modules.' + name)
    doc = yaml.safe_load(mod.DOCUMENTATION)
    if doc.get('module') != name:
        fail('%s: DOCUMENTATION names module %r' % (name, doc.get('module')))
    for key in ('short_description', 'description', 'author'):
        if not doc.get(key):
            fail('%s: DOCUMENTATION has no %s' % (name, key))
    compare(name, doc.get('options'), kwargs['argument_spec'])
    if kwargs.get('supports_check_mode') != (doc.get('attributes', {}).get('check_mode', {}).get('support') in ('full', 'partial')):
        fail('%s: supports_check_mode disagrees with attributes.check_mode' % name)
    examples = yaml.safe_load(mod.EXAMPLES)
    if not isinstance(examples, list) or not examples:
        fail('%s: EXAMPLES is not a list of tasks' % name)
    for task in examples or []:
        if 'pt.passthrough.' + name not in task:
            continue
        unknown = set(task['pt.passthrough.' + name]) - set(kwargs['argument_spec'])
        if unknown:
            fail('%s: an example uses unknown options %s' % (name, sorted(unknown)))
    ret = yaml.safe_load(mod.RETURN)
    if not isinstance(ret, dict) or not ret:
        fail('%s: RETURN is empty' % name)
    print('ok: %s: %d options documented as the argument_spec takes them' % (name, len(kwargs['argument_spec'])))

for role in sorted(glob.glob(os.path.join(coll, 'roles', '*'))):
    rname = os.path.basename(role)
    specs = yaml.safe_load(open(os.path.join(role, 'meta', 'argument_specs.yml')))
    opts = specs['argument_specs']['main']['options']
    defaults = yaml.safe_load(open(os.path.join(role, 'defaults', 'main.yml'))) or {}
    for var in sorted(set(defaults) | set(opts)):
        if var not in opts:
            fail('role %s: %s has a default but no argument spec' % (rname, var))
        elif var not in defaults:
            fail('role %s: %s has an argument spec but no default' % (rname, var))
        elif opts[var].get('default') != defaults[var]:
            fail('role %s: %s defaults to %r but its spec says %r' % (rname, var, defaults[var], opts[var].get('default')))
    print('ok: role %s: %d variables specified as defaulted' % (rname, len(opts)))

sys.exit(1 if failures else 0)

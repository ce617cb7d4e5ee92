#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright 2026 the pt authors; see COPYRIGHT at the top of the collection.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pt_device
short_description: Move a GPU and its companion functions to vfio-pci and back with pt
version_added: "0.1.0"
description:
  - Puts a PCI function or slot in a state with the pt kit's tools, which
    order the moves, verify each by reading it back, journal the original
    drivers and roll back a failed run (see pt-bind(8) and pt(8)).
  - I(state=vfio) runs C(pt-bind detach), I(state=host) runs
    C(pt-bind attach) and I(state=recovered) runs C(pt recover), the
    recovery steps of C(/etc/pt/pt.conf) or pt's built-in recipe.
  - The module first asks pt for its plan with C(--dry-run), which takes no
    lock and changes nothing; when pt finds every function already where
    it should be, the module runs nothing and reports C(changed=false).
  - C(changed) comes from what pt reports it did in its C(--json) output
    (a function it moved, a recovery step it ran) and, for a function pt
    found already on its driver, from its C(driver_override) read back
    before and after; never from the module's own guess.
  - A run that finds the pt lock held (exit status 75) is tried again, at
    most I(lock_retries) more times, I(retry_delay) seconds apart. Any
    other failure fails the task with pt's own message and its exit status
    in C(rc).
author:
  - pt authors
requirements:
  - the pt package (C(pt-bind), C(pt) and C(pt-console) on the target's PATH, or in I(bin_dir))
  - root on the target (C(become=true)) for I(state=vfio), I(state=host) and I(state=recovered)
options:
  device:
    description:
      - The PCI function or slot, in hexadecimal, as pt-bind(8) takes it
        C(0000:3b:00.0), C(3b:00.0), or the slot C(3b:00) (every function of
        it).
      - Naming a GPU moves the other functions of its slot too (its HDMI
        audio, USB-C), as pt-bind's detach plan does.
    type: str
    required: true
  state:
    description:
      - C(vfio) moves the functions to vfio-pci (or I(driver)), journaling
        their host drivers.
      - C(host) gives them back to the drivers journaled at detach (the
        kernel's choice for functions without an entry).
      - C(recovered) runs C(pt recover) on every function of the slot that
        is on vfio-pci or pci-stub, unbound, or still has a journal entry;
        a slot whose functions are all on other drivers with no journal
        entry is already recovered.
    type: str
    choices: [vfio, host, recovered]
    default: vfio
  driver:
    description:
      - The driver I(state=vfio) moves the functions to (C(pt-bind detach --to)),
        for example C(pci-stub).
    type: str
    default: vfio-pci
  release_console:
    description:
      - For I(state=vfio), first free each display function (PCI class 03)
        of I(device) from the host's frame buffer console and firmware
        framebuffer with C(pt-console release), as the hypervisor hooks of
        pt do; C(pt recover) gives them back.
      - When the detach then fails, C(pt-console restore) gives back what
        the release took, and the task fails with the detach's message.
      - Runs only when the detach has something to do.
    type: bool
    default: false
  force:
    description:
      - Unbind even when processes hold the functions' device nodes open or
        the kernel uses them (C(--force) of pt-bind(8)).
    type: bool
    default: false
  reset_method:
    description:
      - The reset method of the recipe's reset step for I(state=recovered)
        (C(pt recover --reset-method)); C(auto) leaves the choice to pt-reset.
      - Unset, pt's default (C(bus)) applies.
    type: str
  root:
    description:
      - Read and write the tree under this directory instead of the running
        system (C(--root) of pt(7)), for a fixture tree or a chroot.
    type: path
  bin_dir:
    description:
      - The directory holding C(pt), C(pt-bind) and C(pt-console); unset,
        they are found on the target's PATH.
    type: path
  lock_retries:
    description:
      - How many more times to run a command that exited 75 because another
        pt command held the lock.
    type: int
    default: 3
  retry_delay:
    description:
      - Seconds between those tries.
    type: float
    default: 5
  lock_timeout:
    description:
      - Seconds each try waits for the pt lock (C(--lock-timeout)) before it
        exits 75; C(0) tries once.
    type: float
    default: 30
  timeout:
    description:
      - Seconds each blocking sysfs write and each verification may take
        (C(--timeout)); unset, pt's default (10).
    type: float
attributes:
  check_mode:
    support: full
    description: Runs pt with C(--dry-run) and returns its plan in C(plan).
  diff_mode:
    support: full
    description: Shows each function's driver before and after.
notes:
  - Check mode maps to C(--dry-run), whose refusals still apply, so a check
    fails where the real run would be refused.
  - The tools' exit statuses are those of pt(7); C(75) is the only one
    retried.
seealso:
  - module: pt.passthrough.pt_facts
'''

EXAMPLES = r'''
- name: Give the GPU and its HDMI audio to vfio-pci before the VM starts
  pt.passthrough.pt_device:
    device: "0000:3b:00.0"
    state: vfio
  become: true

- name: Bring the slot back to the host drivers after the VM stopped
  pt.passthrough.pt_device:
    device: "3b:00"
    state: host
  become: true

- name: Recover the GPU with pt.conf's steps, waiting up to a minute for other pt runs
  pt.passthrough.pt_device:
    device: "0000:3b:00.0"
    state: recovered
    lock_retries: 6
    retry_delay: 10
  become: true

- name: Show what a detach would do, changing nothing
  pt.passthrough.pt_device:
    device: "3b:00.0"
    state: vfio
  check_mode: true
  diff: true
  register: plan
'''

RETURN = r'''
device:
  description: The device as given.
  returned: always
  type: str
  sample: "0000:3b:00.0"
state:
  description: The state asked for.
  returned: always
  type: str
  sample: vfio
functions:
  description:
    - Each function pt moved or considered, in pt's execution order, with
      its driver before (C(before)) and after (C(after)) the run; in check
      mode C(after) is the plan's target (null when the kernel chooses).
  returned: always
  type: list
  elements: dict
  sample: [{"device": "0000:3b:00.1", "before": "snd_hda_intel", "after": "vfio-pci"}]
plan:
  description:
    - pt's C(--dry-run --json) output for the command the state needs
      (pt-bind(8) "JSON output"; for C(recovered), the C(steps) of pt(8)).
  returned: when pt was asked for a plan
  type: dict
console:
  description:
    - pt-console's C(--json) output of the release (C(op), C(gpu),
      C(steps), C(notes), C(already)), one a display function; in check
      mode its C(--dry-run) plan.
  returned: when I(release_console) is true and the detach had something to do
  type: list
  elements: dict
result:
  description:
    - pt's C(--json) output of the run that changed the system, as the tool
      printed it; on failure, what it printed if it was JSON.
  returned: when a mutating command ran
  type: dict
cmd:
  description: The last pt command run.
  returned: when a pt command ran
  type: list
  elements: str
  sample: ["/usr/sbin/pt-bind", "--json", "--lock-timeout", "30", "detach", "0000:3b:00.0"]
attempts:
  description: How many times the mutating command ran (more than 1 after exit 75).
  returned: always
  type: int
  sample: 1
rc:
  description: pt's exit status (see pt(7)); C(75) when the lock stayed busy through every retry.
  returned: failed
  type: int
  sample: 75
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pt.passthrough.plugins.module_utils.pt import (
    PtError,
    PtRunner,
    common_argument_spec,
)

# Where a function is out of the host's hands (pt-bind(8) detach targets).
HELD_DRIVERS = ('vfio-pci', 'pci-stub')


def argument_spec():
    spec = common_argument_spec()
    spec.update(
        device=dict(type='str', required=True),
        state=dict(type='str', default='vfio', choices=['vfio', 'host', 'recovered']),
        driver=dict(type='str', default='vfio-pci'),
        release_console=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        reset_method=dict(type='str'),
        lock_retries=dict(type='int', default=3),
        retry_delay=dict(type='float', default=5),
        lock_timeout=dict(type='float', default=30),
        timeout=dict(type='float'),
    )
    return spec


def show(runner, device):
    """pt-bind show: one object for a function, an array for a slot."""
    data, _ = runner.run('pt-bind', ['show', device])
    return data if isinstance(data, list) else [data]


def bind_args(params):
    dev = params['device']
    if params['state'] == 'vfio':
        args = ['detach']
        if params['driver'] != 'vfio-pci':
            args += ['--to', params['driver']]
    else:
        args = ['attach']
    if params['force']:
        args.append('--force')
    return args + [dev]


def bind_changed(result, before, after):
    """A function pt moved, or one whose override it set where it already was."""
    moved = any(f.get('result') == 'moved' for f in result.get('functions', []))
    return moved or any(before.get(d) != after.get(d) for d in after)


def overrides(functions):
    return dict((f['device'], f.get('driver_override')) for f in functions)


def plan_pending(plan):
    return any(f.get('result') != 'already' for f in plan.get('functions', []))


def needs_recovery(functions):
    """The functions a recovery is for: held, unbound, or still journaled."""
    return [f['device'] for f in functions
            if f.get('driver') in HELD_DRIVERS or f.get('driver') is None or f.get('journal')]


def recover_changed(result):
    return any(s.get('result') == 'ok' for s in result.get('steps', [])) or bool(result.get('changes'))


def diff_of(functions):
    before = ''.join('%s %s\n' % (f['device'], f['before']) for f in functions)
    after = ''.join('%s %s\n' % (f['device'], f['after']) for f in functions)
    return dict(before=before, after=after)


def display_functions(functions):
    return [f['device'] for f in functions if str(f.get('class', '')).startswith('03')]


def release_consoles(module, runner, result, gpus):
    """pt-console release of each GPU; returns those it changed something for."""
    result['console'] = []
    released = []
    for gpu in gpus:
        try:
            out, _ = runner.run('pt-console', ['release', gpu], dry_run=module.check_mode, locks=True)
        except PtError as e:
            restore_consoles(runner, released)
            e.fail(module, changed=bool(released), console=result['console'])
        result['console'].append(out)
        if any(s.get('result') == 'done' for s in out.get('steps', [])):
            released.append(gpu)
    return released


def restore_consoles(runner, gpus):
    """Gives back what release_consoles took; returns pt's messages of what failed."""
    errors = []
    for gpu in gpus:
        try:
            runner.run('pt-console', ['restore', gpu], locks=True)
        except PtError as e:
            errors.append(e.msg)
    return errors


def run_bind(module, runner, result):
    params = module.params
    before_fns = show(runner, params['device'])
    before = dict((f['device'], f.get('driver')) for f in before_fns)
    args = bind_args(params)
    plan, _ = runner.run('pt-bind', args, dry_run=True, locks=True)
    result['plan'] = plan
    result['cmd'] = runner.command('pt-bind', args, dry_run=True, locks=True)
    if not plan_pending(plan):
        # The plan covers functions the device did not name (a GPU's slot).
        result['functions'] = [dict(device=f['device'], before=before.get(f['device'], f.get('from')),
                                    after=before.get(f['device'], f.get('from'))) for f in plan.get('functions', [])]
        return
    released = []
    if params['state'] == 'vfio' and params['release_console']:
        released = release_consoles(module, runner, result, display_functions(before_fns))
    if module.check_mode:
        result['changed'] = True
        result['functions'] = [dict(device=f['device'], before=before.get(f['device'], f.get('from')),
                                    after=f.get('to')) for f in plan['functions']]
        return
    result['cmd'] = runner.command('pt-bind', args, locks=True)
    try:
        done, attempts = runner.run('pt-bind', args, locks=True)
    except PtError as e:
        # pt-bind rolled its own writes back; give the consoles back too.
        errors = restore_consoles(runner, released)
        if errors:
            e.msg += '\nand giving the console back failed: ' + '; '.join(errors)
        e.fail(module, changed=bool(errors), plan=plan, console=result.get('console'))
    result['attempts'] = attempts
    result['result'] = done
    # Read the drivers back from sysfs rather than trusting the plan.
    after_fns = show(runner, params['device'])
    after = dict((f['device'], f.get('driver')) for f in after_fns)
    result['changed'] = bool(released) or bind_changed(done, overrides(before_fns), overrides(after_fns))
    result['functions'] = [dict(device=f['device'], before=f.get('from'),
                                after=after.get(f['device'], f.get('to'))) for f in done.get('functions', [])]


def run_recover(module, runner, result):
    params = module.params
    before_fns = show(runner, params['device'])
    before = dict((f['device'], f.get('driver')) for f in before_fns)
    pending = needs_recovery(before_fns)
    if not pending:
        result['functions'] = [dict(device=d, before=v, after=v) for d, v in sorted(before.items())]
        return
    args = ['recover']
    if params['reset_method']:
        args += ['--reset-method', params['reset_method']]
    args += pending
    plan, _ = runner.run('pt', args, dry_run=True, locks=True)
    result['plan'] = plan
    result['cmd'] = runner.command('pt', args, dry_run=True, locks=True)
    if module.check_mode:
        result['changed'] = any(s.get('result') == 'planned' for s in plan.get('steps', []))
        result['functions'] = [dict(device=d, before=v, after=None if d in pending else v)
                               for d, v in sorted(before.items())]
        return
    result['cmd'] = runner.command('pt', args, locks=True)
    try:
        done, attempts = runner.run('pt', args, locks=True)
    except PtError as e:
        e.fail(module, changed=bool(e.result) and recover_changed(e.result), plan=plan)
    result['attempts'] = attempts
    result['result'] = done
    result['changed'] = recover_changed(done)
    after = dict((f['device'], f.get('driver')) for f in show(runner, params['device']))
    result['functions'] = [dict(device=d, before=v, after=after.get(d)) for d, v in sorted(before.items())]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    for name in ('lock_retries',):
        if params[name] < 0:
            module.fail_json(msg='%s must be 0 or more, got %d' % (name, params[name]))
    for name in ('retry_delay', 'lock_timeout'):
        if params[name] < 0:
            module.fail_json(msg='%s must be 0 or more, got %s' % (name, params[name]))
    if params['timeout'] is not None and params['timeout'] <= 0:
        module.fail_json(msg='timeout must be more than 0, got %s' % params['timeout'])
    runner = PtRunner(module, lock_retries=params['lock_retries'], retry_delay=params['retry_delay'],
                      lock_timeout=params['lock_timeout'], timeout=params['timeout'])
    result = dict(changed=False, device=params['device'], state=params['state'], functions=[], attempts=0)
    try:
        if params['state'] == 'recovered':
            run_recover(module, runner, result)
        else:
            run_bind(module, runner, result)
    except PtError as e:
        e.fail(module, changed=False, device=params['device'], state=params['state'])
    if module._diff:
        result['diff'] = diff_of(result['functions'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()

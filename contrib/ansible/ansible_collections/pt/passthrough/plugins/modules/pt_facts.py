#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright 2026 the pt authors; see COPYRIGHT at the top of the collection.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pt_facts
short_description: Gather the PCI functions, their drivers and pt's state of GPUs as facts
version_added: "0.1.0"
description:
  - Sets C(ansible_facts.pt) from C(pt-bind list --json) (every PCI
    function) and, for each of I(devices), C(pt status --json) (the whole
    state of a GPU's slot and IOMMU groups, see pt(8)).
  - Reads only; takes no lock and writes nothing, so it runs the same in
    check mode.
author:
  - pt authors
requirements:
  - the pt package (C(pt-bind) and C(pt) on the target's PATH, or in I(bin_dir))
options:
  devices:
    description:
      - The functions or slots to gather C(pt status) for, as pt(8) takes
        them (C(0000:3b:00.0), C(3b:00.0), C(3b:00)).
      - Empty, only the list of functions is gathered.
    type: list
    elements: str
    default: []
  root:
    description:
      - Read the tree under this directory instead of the running system
        (C(--root) of pt(7)).
    type: path
  bin_dir:
    description:
      - The directory holding C(pt) and C(pt-bind); unset, they are found on
        the target's PATH.
    type: path
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Changes nothing.
  facts:
    support: full
    description: Sets C(ansible_facts.pt).
seealso:
  - module: pt.passthrough.pt_device
'''

EXAMPLES = r'''
- name: Gather every function's driver and the GPU's state
  pt.passthrough.pt_facts:
    devices: ["0000:3b:00.0"]

- name: The GPU and its audio are on vfio-pci
  ansible.builtin.assert:
    that:
      - ansible_facts.pt.drivers['0000:3b:00.0'] == 'vfio-pci'
      - "'0000:3b:00.1' in ansible_facts.pt.on_vfio"
      - ansible_facts.pt.status['0000:3b:00.0'].journal.job is none
'''

RETURN = r'''
ansible_facts:
  description: The facts gathered.
  returned: always
  type: dict
  contains:
    pt:
      description: What pt reports of the host's PCI functions.
      returned: always
      type: dict
      contains:
        functions:
          description:
            - Every PCI function, bridges included, keyed by its full
              address, each the object C(pt-bind list --json) prints for it
              (C(device), C(vendor), C(device_id), C(class), C(class_name),
              C(vendor_name), C(device_name), C(driver), C(iommu_group),
              C(boot_vga), C(reset_methods), C(companions); see pt-bind(8)).
          returned: always
          type: dict
          sample: {"0000:3b:00.0": {"device": "0000:3b:00.0", "driver": "vfio-pci", "iommu_group": 12}}
        drivers:
          description: Each function's bound driver (null when unbound), keyed by address.
          returned: always
          type: dict
          sample: {"0000:3b:00.0": "vfio-pci", "0000:3b:00.1": "vfio-pci"}
        on_vfio:
          description: The addresses of the functions on vfio-pci, in address order.
          returned: always
          type: list
          elements: str
          sample: ["0000:3b:00.0", "0000:3b:00.1"]
        status:
          description:
            - For each of I(devices), as given, the object C(pt status --json)
              prints (C(functions), C(journal) with C(job) and C(error),
              C(warnings), C(vtconsoles); see pt(8) "JSON").
          returned: always
          type: dict
          sample: {"3b:00": {"device": "3b:00", "journal": {"job": null, "error": null}, "warnings": []}}
        journal_job:
          description:
            - Whether a pt job is unfinished in the journal (a crashed run
              the next pt command finishes or undoes). The journal is the
              host's, so the first of I(devices)'s status tells; null
              without I(devices).
          returned: always
          type: bool
          sample: false
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pt.passthrough.plugins.module_utils.pt import (
    PtError,
    PtRunner,
    common_argument_spec,
)


def argument_spec():
    spec = common_argument_spec()
    spec.update(devices=dict(type='list', elements='str', default=[]))
    return spec


def gather(module, runner):
    listing, _ = runner.run('pt-bind', ['list'])
    functions = dict((f['device'], f) for f in listing)
    drivers = dict((bdf, f.get('driver')) for bdf, f in functions.items())
    facts = dict(
        functions=functions,
        drivers=drivers,
        on_vfio=sorted(bdf for bdf, drv in drivers.items() if drv == 'vfio-pci'),
        status={},
        journal_job=None,
    )
    for dev in module.params['devices']:
        status, _ = runner.run('pt', ['status', dev])
        facts['status'][dev] = status
        if facts['journal_job'] is None:
            facts['journal_job'] = (status.get('journal') or {}).get('job') is not None
    return facts


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    runner = PtRunner(module)
    try:
        facts = gather(module, runner)
    except PtError as e:
        e.fail(module)
    module.exit_json(changed=False, ansible_facts=dict(pt=facts))


if __name__ == '__main__':
    main()

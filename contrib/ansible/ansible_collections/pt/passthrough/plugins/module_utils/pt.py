# -*- coding: utf-8 -*-
# Copyright 2026 the pt authors; see COPYRIGHT at the top of the collection.
"""Runs pt's tools for the modules of pt.passthrough and reads their --json.

pt's tools print JSON on standard output and their errors, one line each,
on standard error; their exit status says what happened (pt(7)): 0 done,
1 refused with nothing changed, 2 usage, 3 rolled back, 4 rollback failed,
5 a write stuck in the kernel, 75 another pt command held the lock.
Only 75 is worth another try: the others are the same on a second run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

# pt(7): another pt command held the lock past --lock-timeout.
EXIT_LOCK_BUSY = 75


def common_argument_spec():
    """The options every pt.passthrough module takes."""
    return dict(
        root=dict(type='path'),
        bin_dir=dict(type='path'),
    )


class PtError(Exception):
    """A pt tool failed; carries what fail_json reports."""

    def __init__(self, msg, rc, cmd, stdout, stderr, attempts, result=None):
        super(PtError, self).__init__(msg)
        self.msg = msg
        self.rc = rc
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.attempts = attempts
        self.result = result

    def fail(self, module, **extra):
        info = dict(msg=self.msg, rc=self.rc, cmd=self.cmd, stdout=self.stdout,
                    stderr=self.stderr, attempts=self.attempts)
        if self.result is not None:
            info['result'] = self.result
        info.update(extra)
        module.fail_json(**info)


class PtRunner:
    """Finds and runs pt, pt-bind and the other tools with the module's options."""

    def __init__(self, module, lock_retries=0, retry_delay=0.0, lock_timeout=None, timeout=None):
        self.module = module
        self.root = module.params.get('root')
        self.bin_dir = module.params.get('bin_dir')
        self.lock_retries = max(0, lock_retries or 0)
        self.retry_delay = max(0.0, retry_delay or 0.0)
        self.lock_timeout = lock_timeout
        self.timeout = timeout

    def tool(self, name):
        if self.bin_dir:
            path = os.path.join(self.bin_dir, name)
            if not os.access(path, os.X_OK):
                self.module.fail_json(msg='%s: no executable %s in bin_dir; install pt or fix bin_dir' % (path, name))
            return path
        return self.module.get_bin_path(name, required=True)

    def command(self, tool, args, dry_run=False, locks=False):
        cmd = [self.tool(tool), '--json']
        if self.root:
            cmd += ['--root', self.root]
        if dry_run:
            cmd.append('--dry-run')
        if locks and self.lock_timeout is not None:
            cmd += ['--lock-timeout', _number(self.lock_timeout)]
        if locks and self.timeout is not None:
            cmd += ['--timeout', _number(self.timeout)]
        return cmd + list(args)

    def run(self, tool, args, dry_run=False, locks=False):
        """Runs TOOL ARGS --json; returns (parsed JSON, attempts).

        A command that takes the lock (LOCKS, and not a dry run, which
        takes none) is tried again after retry_delay seconds while it exits
        75, at most lock_retries more times. Any other failure, or 75 on
        the last try, raises PtError with pt's own message and exit status.
        """
        cmd = self.command(tool, args, dry_run=dry_run, locks=locks)
        tries = 1 + (self.lock_retries if locks and not dry_run else 0)
        attempts = 0
        while True:
            attempts += 1
            rc, out, err = self.module.run_command(cmd, environ_update=_environ(self.root))
            if rc == EXIT_LOCK_BUSY and attempts < tries:
                time.sleep(self.retry_delay)
                continue
            break
        data = _parse(out)
        if rc != 0:
            raise PtError(_message(err, out, rc, tool), rc, cmd, out, err, attempts, data)
        if data is None:
            raise PtError('%s printed no JSON: %s' % (tool, out.strip()[:200] or '(nothing)'),
                          rc, cmd, out, err, attempts)
        return data, attempts


def _number(value):
    """'10' for 10.0, so that the tools' number parsing sees what a person types."""
    text = repr(float(value))
    return text[:-2] if text.endswith('.0') else text


def _environ(root):
    # pt's messages are English; the C locale keeps what the tools around
    # them print so too.
    return {'LC_ALL': 'C'}


def _parse(out):
    text = out.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _message(err, out, rc, tool):
    """pt's own words: its standard error, else its output, else the status."""
    for text in (err, out):
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if lines and not lines[0].lstrip().startswith(('{', '[')):
            return '\n'.join(lines)
    return '%s exited with status %d' % (tool, rc)

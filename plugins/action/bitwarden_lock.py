# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of bitwarden_lock: the lock's holder is the ansible-playbook process on the controller.

The module runs on the managed host and exits at once, so its own PID says nothing about the run. This plugin
records the controller process of the run in the lock and, when a lock from this same controller is found, checks on
the controller whether that process still exists; a dead holder's lock is taken over at once instead of waited for.
"""

from __future__ import annotations

import os
import socket

from ansible.plugins.action import ActionBase

MODULE = "selfhost.bitwarden.bitwarden_lock"


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except (IOError, OSError, UnicodeDecodeError):
        return None


def process_start(pid):
    """Field 22 of /proc/<pid>/stat (start time in clock ticks after boot), None when there is no such process."""
    stat = _read("/proc/%d/stat" % pid)
    if not stat:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # fields after "(comm)" start at field 3
    except (IndexError, ValueError):
        return None


def controller_identity():
    """The ansible-playbook process of this run: workers are forked from it, so it is this worker's parent."""
    pid = os.getppid()
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = None
    return {"host": socket.gethostname(), "boot_id": _read("/proc/sys/kernel/random/boot_id"), "pid_ns": pid_ns,
            "pid": pid, "started": process_start(pid)}


def holder_dead(holder, me):
    """True when the holder's controller process provably no longer runs: it ran on this controller (same host name,
    boot and PID namespace, so its PID means the same here) and that PID is gone or belongs to a later process."""
    theirs = (holder or {}).get("controller") or {}
    if not me["boot_id"] or not me["pid_ns"] or me["started"] is None:
        return False
    if any(theirs.get(key) != me[key] for key in ("host", "boot_id", "pid_ns")):
        return False
    if not isinstance(theirs.get("pid"), int) or not isinstance(theirs.get("started"), int):
        return False
    return process_start(theirs["pid"]) != theirs["started"]


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("state", "acquired") != "acquired":
            result.update(self._execute_module(module_args=args, task_vars=task_vars))
            return result
        me = controller_identity()
        args["controller"] = me
        # First a look without waiting: a holder that died on this controller is taken over at once.
        answer = self._execute_module(module_name=MODULE, module_args=dict(args, timeout=0, fail_when_held=False),
                                      task_vars=task_vars)
        holder = answer.get("holder") or {}
        if not answer.get("failed") and answer.get("acquired") is False:
            if holder_dead(holder, me):
                args["takeover_run_id"] = holder.get("run_id")  # taken over only if the file still names that run
            if not self._task.check_mode or args.get("takeover_run_id"):
                answer = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        result.update(answer)
        return result

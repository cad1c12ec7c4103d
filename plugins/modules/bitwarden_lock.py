#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_lock
short_description: Serialize runs on one Bitwarden host with a lock file beside the installation
version_added: 0.3.0
description:
  - Takes (O(state=acquired)) or gives back (O(state=released)) a per-host lock, so that two runs of the collection
    never change and restart the same server at the same time. A second run waits up to O(timeout) seconds and
    then continues on the host the first run left.
  - The lock is a file, C(<bwdata_path>/.selfhost-bitwarden.lock) unless O(path) says otherwise, created with
    C(O_EXCL) and holding JSON with the holder (O(run_id), O(holder), the managed host's name, the controller process
    that runs the play), the time it was taken and when it expires.
  - The holder of a lock is the C(ansible-playbook) process on the controller, not the short-lived module process on
    the managed host. The module's action plugin records that process (controller host name, boot id, PID namespace,
    PID and its start time from C(/proc/<pid>/stat)) in the lock.
  - A lock whose holder is provably dead is taken over at once, with a warning. It is provably dead when it was taken
    from this same controller (same host name, boot id and PID namespace) and its process is gone or is another
    process now (a different start time under the same PID). A holder on another controller cannot be checked from
    here; its lock is waited for and taken over once it expires, O(expires_after) seconds after it was taken or last
    renewed. The action plugin looks at the holder before it waits; a holder that dies while another run waits for it
    is taken over at its expiry.
  - A lock file that cannot be read (not UTF-8, not JSON, truncated or empty, an C(expires) without a time zone, a
    missing run id) is the leftover of a writer that died or of someone else's editor; it is taken over at once with
    a warning that names what was wrong with it.
  - Acquiring again with the same O(run_id) renews it.
  - Only the holder releases the lock. Releasing with another O(run_id) fails and leaves the lock in place; releasing a
    lock that is not there changes nothing.
  - Every change of the lock file happens under an exclusive C(flock) on its directory, so two runs that find
    the same stale lock cannot both take it over.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details:
      - The action plugin runs on the controller; it records the controller process that holds the lock and decides
        whether a holder from this controller is dead.
  check_mode:
    support: full
    details:
      - In check mode the lock file is never written or removed and the module never waits. A free lock, or one this
        run holds, reports no change and no diff (a real run takes and gives back the lock, so nothing stays). Only a
        stale lock that a real run would take over (provably dead holder, expired, unreadable) reports a change, with
        that holder in the diff.
      - When another live run holds the lock, a warning names that holder (a check-mode report next to a running
        change can be out of date when that run finishes).
      - Because check mode takes no lock, a check-mode run never blocks a real run and is never blocked by one.
  diff_mode:
    support: full
    details:
      - Shows the lock file's holder before and after when the lock file changes.
  idempotent:
    support: full
    details:
      - Acquiring a lock this run already holds renews its expiry and reports no change; releasing a lock that is
        not there reports no change.
options:
  state:
    description:
      - V(acquired) takes the lock (waiting for another holder up to O(timeout)), V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  run_id:
    description:
      - Identifies the run that holds the lock; the same value must be given to release it.
      - Pick one value per playbook run, for example once with C(run_once) and C(ansible.builtin.set_fact).
    type: str
    required: true
  holder:
    description:
      - Free text about the holder, written into the lock file and shown to runs that wait, for example the
        controller's host name and user.
    type: str
    default: ""
  bwdata_path:
    description:
      - The C(bwdata) directory of the installation on the managed host; the lock file goes there.
    type: path
    default: /opt/bitwarden/bwdata
  path:
    description:
      - The lock file, instead of C(<bwdata_path>/.selfhost-bitwarden.lock). Its directory must exist.
    type: path
  timeout:
    description:
      - Seconds to wait while another live run holds a lock that has not expired, from 0 (do not wait) to 86400.
      - The default outlasts the default O(expires_after), so that a waiting run can always outwait a lock abandoned
        on another controller. Keep it above O(expires_after) when you change either.
    type: int
    default: 1860
  expires_after:
    description:
      - Seconds after which a lock that was not released or renewed counts as abandoned and may be taken over,
        from 60 to 86400. Keep it longer than a run (a restart wait included) and below O(timeout).
    type: int
    default: 1800
  poll:
    description:
      - Seconds between two looks at a held lock.
    type: float
    default: 2
  controller:
    description:
      - The controller process that holds the lock for this run, written into the lock file. The action plugin sets
        it; leave it unset.
    type: dict
  takeover_run_id:
    description:
      - The run id of a holder known to be dead. When the lock file still names this run, it is taken over at once.
        The action plugin sets it for a holder it proved dead; set it yourself only for a run you know is gone.
    type: str
  fail_when_held:
    description:
      - When V(false), a lock still held by another run after O(timeout) is reported with RV(acquired=false) instead
        of failing the task.
    type: bool
    default: true
notes:
  - The lock protects the runs of this collection against each other; it does not stop someone running
    C(bitwarden.sh) by hand.
  - Proving a holder dead needs C(/proc) on the controller (Linux). Elsewhere a lock of a killed run is taken over
    when it expires.
seealso:
  - module: selfhost.bitwarden.bitwarden_cloud_comm
"""

EXAMPLES = r"""
- name: Pick one id for this run
  ansible.builtin.set_fact:
    bitwarden_run_id: "{{ 999999999999 | random | string | to_uuid }}"
  run_once: true

- name: Take the host's lock (wait up to 31 minutes for another run)
  selfhost.bitwarden.bitwarden_lock:
    bwdata_path: /home/bitwarden/bwdata
    run_id: "{{ bitwarden_run_id }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}"
    timeout: 1860
    expires_after: 1800

- name: Give the lock back
  selfhost.bitwarden.bitwarden_lock:
    bwdata_path: /home/bitwarden/bwdata
    run_id: "{{ bitwarden_run_id }}"
    state: released
"""

RETURN = r"""
path:
  description: The lock file.
  returned: always
  type: str
  sample: /opt/bitwarden/bwdata/.selfhost-bitwarden.lock
acquired:
  description:
    - Whether this run holds the lock after the task (in check mode, whether it would). V(false) only with
      O(fail_when_held=false), or in check mode while another live run holds it.
  returned: when O(state=acquired)
  type: bool
  sample: true
holder:
  description:
    - The lock file's content after the task; V(null) when no lock is held.
    - In check mode, the holder a real run would write, or, when another run holds the lock, that holder.
  returned: always
  type: dict
  contains:
    run_id:
      description: The run that holds the lock.
      type: str
    holder:
      description: The holder's free text.
      type: str
    host:
      description: The managed host's name, as the module saw it.
      type: str
    controller:
      description:
        - The controller process of the run (C(host), C(boot_id), C(pid_ns), C(pid), C(started) in clock ticks
          after boot); empty when the module ran without its action plugin.
      type: dict
    acquired:
      description: When the lock was taken or last renewed (UTC, ISO 8601).
      type: str
    expires:
      description: When the lock counts as abandoned (UTC, ISO 8601).
      type: str
  sample:
    run_id: 20261129T130000000000-42
    holder: ops-controller (selfhost.bitwarden billing_sync)
    host: bw-prod-1
    controller: {host: ops-controller, boot_id: 0f6e1c1e-0d59-4c1b-a4c3-6d1f0c1e9a11, pid_ns: "pid:[4026531836]",
                 pid: 4242, started: 81234567}
    acquired: "2026-11-29T13:00:00+00:00"
    expires: "2026-11-29T13:30:00+00:00"
waited:
  description: Seconds spent waiting for another holder.
  returned: always
  type: float
  sample: 12.3
taken_over:
  description:
    - The stale lock that was replaced (in check mode, that would be), V(null) when none was. An unreadable file
      shows as a dict with the key C(unreadable) and what was wrong as its value.
  returned: always
  type: dict
  sample: null
taken_over_because:
  description: Why the lock was stale, V(null) when none was taken over.
  returned: always
  type: str
  choices: [holder dead, expired, unreadable]
  sample: holder dead
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

LOCK_NAME = ".selfhost-bitwarden.lock"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_expires(value):
    """The lock's expiry as an aware datetime; ValueError for anything else (a naive time cannot be compared)."""
    if not isinstance(value, str):
        raise ValueError("no expires")
    expires = datetime.datetime.fromisoformat(value)
    if expires.tzinfo is None:
        raise ValueError("expires %s has no time zone" % value)
    return expires


def read_lock(path):
    """(holder, problem): (None, None) without a lock file, (dict, None) for a readable one, ({}, why) for junk.

    Writers hold the directory guard from create to fsync, so a reader under the guard never sees a live writer's
    half-written file: whatever cannot be read is a dead writer's or someone else's, never a run's in progress."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        raise
    if not data.strip():
        return {}, "the file is empty"
    try:
        holder = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return {}, "the file is not UTF-8"
    except ValueError:
        return {}, "the file is not JSON (truncated?)"
    if not isinstance(holder, dict) or not isinstance(holder.get("run_id"), str) or not holder["run_id"]:
        return {}, "the file names no run_id"
    try:
        parse_expires(holder.get("expires"))
    except (TypeError, ValueError) as exc:
        return {}, "its expires is unusable (%s)" % to_native(exc)
    return holder, None


class DirectoryGuard:
    """Exclusive flock on the lock's directory: every look-and-change of the lock file happens under it."""

    def __init__(self, directory):
        self.directory = directory
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.directory, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing drops the flock


def new_holder(params, now):
    return {
        "run_id": params["run_id"],
        "holder": params["holder"],
        "host": socket.gethostname(),
        "controller": params["controller"] or {},
        "acquired": now.isoformat(),
        "expires": (now + datetime.timedelta(seconds=params["expires_after"])).isoformat(),
    }


def describe(holder):
    controller = holder.get("controller") or {}
    process = (", controller process %s on %s" % (controller.get("pid"), controller.get("host"))) if controller else ""
    return "run %s (%s%s) since %s, until %s" % (holder.get("run_id"), holder.get("holder") or "no holder given",
                                                 process, holder.get("acquired"), holder.get("expires"))


def stale_reason(current, problem, params, now):
    """Why a lock another run wrote may be taken over now, or None while it counts as held."""
    if problem:
        return "unreadable"
    if params["takeover_run_id"] and current["run_id"] == params["takeover_run_id"]:
        return "holder dead"
    if now >= parse_expires(current["expires"]):
        return "expired"
    return None


def take_over(module, path, current, problem, reason, result):
    result.update(taken_over={"unreadable": problem} if problem else current, taken_over_because=reason)
    what = {"unreadable": "could not be read (%s)" % problem,
            "holder dead": "was held by %s, whose controller process is gone" % describe(current),
            "expired": "was held by %s, which expired" % describe(current)}[reason]
    module.warn("The lock file %s %s: %s." % (path, what, "a real run would take it over" if module.check_mode else "took it over"))


def acquire(module, path, result):
    """Take (or renew) the lock; return the holder found before."""
    params = module.params
    started = time.monotonic()
    while True:
        with DirectoryGuard(os.path.dirname(path)):
            now = utc_now()
            current, problem = read_lock(path)
            if current is not None and not problem and current["run_id"] == params["run_id"]:
                # Renew: the same run acquiring again (a later play, a retry) extends its expiry.
                holder = dict(current, expires=(now + datetime.timedelta(seconds=params["expires_after"])).isoformat())
                if not module.check_mode:
                    write(path, holder, create=False)
                result.update(holder=holder, acquired=True)
                return current
            reason = None if current is None else stale_reason(current, problem, params, now)
            if current is None or reason:
                if reason:
                    take_over(module, path, current, problem, reason, result)
                holder = new_holder(params, now)
                # Check mode: a free lock would be taken and given back, nothing stays; a stale one would be replaced.
                result.update(changed=bool(reason) or not module.check_mode, holder=holder, acquired=True)
                if not module.check_mode:
                    if current is not None:
                        os.unlink(path)
                    write(path, holder, create=True)
                return current
        waited = time.monotonic() - started
        if module.check_mode:
            module.warn("%s is held by %s: this check-mode report may be out of date when that run finishes"
                        % (path, describe(current)))
            result.update(holder=current, acquired=False)
            return current
        if waited + params["poll"] > params["timeout"]:
            result.update(waited=round(waited, 1), holder=current, acquired=False)
            if not params["fail_when_held"]:
                return current
            module.fail_json(msg="%s is held by %s; waited %.0f s (timeout=%d): let that run finish, raise timeout, or, "
                                 "if that run is dead, delete the file (it also counts as abandoned at its expiry)"
                                 % (path, describe(current), waited, params["timeout"]), **result)
        time.sleep(params["poll"])
        result["waited"] = round(time.monotonic() - started, 1)


def write(path, holder, create):
    """Write the holder and fsync. A new lock is created with O_EXCL; a renewal rewrites the holder's own file in place
    (every reader looks under the directory guard, so none sees it half written)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if create else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, json.dumps(holder, sort_keys=True).encode("utf-8") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def release(module, path, result):
    """Remove the lock if this run holds it; return the holder found before."""
    with DirectoryGuard(os.path.dirname(path)):
        current, problem = read_lock(path)
        if current is None:
            return None
        if problem or current["run_id"] != module.params["run_id"]:
            if module.check_mode:
                return None  # check mode never took the lock, so it has nothing to give back
            module.fail_json(msg="%s is held by %s, not by run %s: only the holder releases it (nothing was changed)"
                                 % (path, describe(current) if not problem else "nobody readable (%s)" % problem,
                                    module.params["run_id"]), **dict(result, holder=current))
        result.update(changed=True, holder=None)
        if not module.check_mode:
            os.unlink(path)
        return current


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["acquired", "released"], default="acquired"),
            run_id=dict(type="str", required=True),
            holder=dict(type="str", default=""),
            bwdata_path=dict(type="path", default="/opt/bitwarden/bwdata"),
            path=dict(type="path"),
            timeout=dict(type="int", default=1860),
            expires_after=dict(type="int", default=1800),
            poll=dict(type="float", default=2),
            controller=dict(type="dict"),
            takeover_run_id=dict(type="str"),
            fail_when_held=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["run_id"].strip():
        module.fail_json(msg="run_id must not be empty: pick one id per playbook run and pass it to acquire and release")
    if not 0 <= params["timeout"] <= 86400:
        module.fail_json(msg="timeout must be from 0 to 86400 seconds, not %d" % params["timeout"])
    if not 60 <= params["expires_after"] <= 86400:
        module.fail_json(msg="expires_after must be from 60 to 86400 seconds, not %d: keep it longer than a run"
                             % params["expires_after"])
    if not 0.1 <= params["poll"] <= 60:
        module.fail_json(msg="poll must be from 0.1 to 60 seconds, not %s" % params["poll"])
    path = params["path"] or os.path.join(params["bwdata_path"], LOCK_NAME)
    if not os.path.isdir(os.path.dirname(path)):
        module.fail_json(msg="the directory of the lock file %s does not exist: set bwdata_path to the installation's "
                             "bwdata directory (or path to a file in an existing directory)" % path)

    result = dict(changed=False, path=path, holder=None, waited=0.0, taken_over=None, taken_over_because=None)
    try:
        before = (acquire if params["state"] == "acquired" else release)(module, path, result)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot use the lock file %s (%s): the module needs write access to its directory (become "
                             "the installation's user or root)" % (path, to_native(exc)), **result)
    if module._diff and result["changed"]:
        result["diff"] = {"before": before or ({"unreadable": result["taken_over"]["unreadable"]} if result["taken_over"] else {}),
                          "after": result["holder"] or {}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

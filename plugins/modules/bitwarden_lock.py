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
    C(O_EXCL) and holding JSON with the holder (O(run_id), O(holder), the managed host's name and the module's
    process id), the time it was taken and when it expires.
  - A lock whose holder did not give it back (a run killed with C(kill -9), a lost controller) is taken over once it
    expires, O(expires_after) seconds after it was taken or last renewed. Acquiring again with the same O(run_id)
    renews it.
  - Only the holder releases the lock. Releasing with another O(run_id) fails and leaves the lock in place; releasing a
    lock that is not there changes nothing.
  - Every change of the lock file happens under an exclusive C(flock) on its directory, so two runs that find
    the same expired lock cannot both take it over.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the lock file is never written or removed and the module never waits. O(state=acquired)
        reports whether it would take the lock, and when another run holds it returns that holder in RV(holder)
        with a warning (a check-mode report next to a running change can be out of date when that run finishes).
      - Because check mode takes no lock, a check-mode run never blocks a real run and is never blocked by one.
  diff_mode:
    support: full
    details:
      - Shows the lock file's holder before and after.
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
        controller's host name, user and process id.
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
      - Seconds to wait while another run holds a lock that has not expired, from 0 (do not wait) to 86400.
    type: int
    default: 900
  expires_after:
    description:
      - Seconds after which a lock that was not released or renewed counts as abandoned and may be taken over,
        from 60 to 86400. Keep it longer than a run (a restart wait included).
    type: int
    default: 3600
  poll:
    description:
      - Seconds between two looks at a held lock.
    type: float
    default: 2
notes:
  - The lock protects the runs of this collection against each other; it does not stop someone running
    C(bitwarden.sh) by hand.
seealso:
  - module: selfhost.bitwarden.bitwarden_cloud_comm
"""

EXAMPLES = r"""
- name: Pick one id for this run
  ansible.builtin.set_fact:
    bitwarden_run_id: "{{ 999999999999 | random | string | to_uuid }}"
  run_once: true

- name: Take the host's lock (wait up to 15 minutes for another run)
  selfhost.bitwarden.bitwarden_lock:
    bwdata_path: /home/bitwarden/bwdata
    run_id: "{{ bitwarden_run_id }}"
    holder: "{{ lookup('ansible.builtin.pipe', 'hostname') }} {{ lookup('ansible.builtin.env', 'USER') }}"
    timeout: 900

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
holder:
  description:
    - The lock file's content after the task; V(null) when no lock is held.
    - In check mode, when another run holds the lock, that holder.
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
    pid:
      description: Process id of the module that took the lock.
      type: int
    acquired:
      description: When the lock was taken or last renewed (UTC, ISO 8601).
      type: str
    expires:
      description: When the lock counts as abandoned (UTC, ISO 8601).
      type: str
  sample:
    run_id: 0b1f4a36-8f84-5c0e-9c5e-2f1d3f9a7b21
    holder: ops-controller alice
    host: bw-prod-1
    pid: 4242
    acquired: "2026-11-29T13:00:00+00:00"
    expires: "2026-11-29T14:00:00+00:00"
waited:
  description: Seconds spent waiting for another holder.
  returned: always
  type: float
  sample: 12.3
taken_over:
  description: The expired lock that was replaced, V(null) when none was.
  returned: always
  type: dict
  sample: null
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
# A holder killed between creating the file and writing it leaves it empty: treat it as taken this long after its mtime.
UNWRITTEN_GRACE = 60


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def read_lock(path):
    """The holder dict, {} for a file without readable content, None when there is no lock file."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def expired(path, holder, now):
    """Whether a lock may be taken over: past its expiry (or, unreadable, past the grace after its mtime)."""
    try:
        expires = datetime.datetime.fromisoformat(holder["expires"])
    except (KeyError, TypeError, ValueError):
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return True
        return time.time() > mtime + UNWRITTEN_GRACE
    return now >= expires


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
        "pid": os.getpid(),
        "acquired": now.isoformat(),
        "expires": (now + datetime.timedelta(seconds=params["expires_after"])).isoformat(),
    }


def describe(holder):
    if not holder:
        return "an unreadable lock file"
    return "run %s (%s) since %s, until %s" % (holder.get("run_id"), holder.get("holder") or "no holder given",
                                               holder.get("acquired"), holder.get("expires"))


def acquire(module, path, result):
    """Take (or renew) the lock; return the holder found before."""
    params = module.params
    started = time.monotonic()
    while True:
        with DirectoryGuard(os.path.dirname(path)):
            now = utc_now()
            current = read_lock(path)
            mine = current is not None and current.get("run_id") == params["run_id"]
            free = current is None or (not mine and expired(path, current, now))
            if mine:
                # Renew: the same run acquiring again (a later play, a retry) extends its expiry.
                holder = dict(current, expires=(now + datetime.timedelta(seconds=params["expires_after"])).isoformat())
                if not module.check_mode:
                    write(path, holder, create=False)
                result.update(holder=holder)
                return current
            if free:
                if current is not None:
                    result["taken_over"] = current
                holder = new_holder(params, now)
                if not module.check_mode:
                    if current is not None:
                        os.unlink(path)
                    write(path, holder, create=True)
                result.update(changed=True, holder=holder)
                return current
        waited = time.monotonic() - started
        if module.check_mode:
            module.warn("%s is held by %s: this check-mode report may be out of date when that run finishes"
                        % (path, describe(current)))
            result.update(holder=current, changed=True)
            return current
        if waited + params["poll"] > params["timeout"]:
            result.update(waited=round(waited, 1), holder=current)
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
        current = read_lock(path)
        if current is None:
            return None
        if current.get("run_id") != module.params["run_id"]:
            module.fail_json(msg="%s is held by %s, not by run %s: only the holder releases it (nothing was changed)"
                                 % (path, describe(current), module.params["run_id"]), **dict(result, holder=current))
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
            timeout=dict(type="int", default=900),
            expires_after=dict(type="int", default=3600),
            poll=dict(type="float", default=2),
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

    result = dict(changed=False, path=path, holder=None, waited=0.0, taken_over=None)
    try:
        before = (acquire if params["state"] == "acquired" else release)(module, path, result)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot use the lock file %s (%s): the module needs write access to its directory (become "
                             "the installation's user or root)" % (path, to_native(exc)), **result)
    if module._diff:
        result["diff"] = {"before": before or {}, "after": result["holder"] or {}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

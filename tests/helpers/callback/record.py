# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: appends every task result as one JSON line to $SELFHOST_BW_RECORD.

The default callback still prints to stdout (tests scan that for secrets); this file gives tests
structured results without parsing human output. ansible-core ships no JSON callback of its own.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record
type: aggregate
short_description: write task results as JSON lines for the test-suite
description: Test helper of selfhost.bitwarden, never shipped.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("SELFHOST_BW_RECORD")

    def _write(self, event, **fields):
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(dict(event=event, **fields), default=str) + "\n")

    def _task_result(self, status, result):
        data = result._result
        if data.get("_ansible_no_log"):
            data = {"censored": "no_log", "changed": data.get("changed", False)}
        self._write(
            "task",
            status=status,
            host=result._host.get_name(),
            task=result._task.get_name(),
            action=result._task.action,
            result=data,
        )

    def v2_runner_on_ok(self, result):
        self._task_result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task_result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result):
        self._task_result("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._task_result("unreachable", result)

    def v2_playbook_on_handler_task_start(self, task):
        self._write("handler", task=task.get_name())

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        self._write("stats", hosts={host: stats.summarize(host) for host in hosts})

# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This plugin_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""Action plugins of the modules that make the Bitwarden cloud issue a token: the ``pace`` option on the controller."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _pace


class PacedAction(ActionBase):
    """Takes a slot of the ``pace`` budget, then runs the module in the same task (see _pace)."""

    COST = 1  # slots one call takes
    DECIDE_FIRST = False  # run the module in check mode first; pace and run for real only when it reports changed
    PACE_IN_CHECK_MODE = False  # the module calls the cloud in check mode too

    def calls_the_cloud(self, args):  # pylint: disable=unused-argument
        """Whether a run with these arguments can make the cloud issue a token (else no slot is taken)."""
        return True

    def _run_module(self, args, task_vars, check_mode):
        saved = self._task.check_mode
        self._task.check_mode = check_mode
        try:
            return self._execute_module(module_name=self._task.action, module_args=args, task_vars=task_vars)
        finally:
            self._task.check_mode = saved

    def run(self, tmp=None, task_vars=None):
        result = super(PacedAction, self).run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            pace = _pace.settings(args.pop("pace", None))
        except ValueError as exc:
            return dict(result, failed=True, msg=str(exc))
        check_mode = bool(self._task.check_mode)
        if pace is None or not self.calls_the_cloud(args) or (check_mode and not self.PACE_IN_CHECK_MODE):
            return dict(result, **self._run_module(args, task_vars, check_mode))
        if self.DECIDE_FIRST and not check_mode:
            plan = self._run_module(args, task_vars, True)
            if plan.get("failed") or not plan.get("changed"):
                return dict(result, **plan)
        try:
            waited = _pace.take_slot(pace, self.COST)
        except ValueError as exc:
            return dict(result, failed=True, msg=str(exc))
        return dict(result, paced_wait=waited, **self._run_module(args, task_vars, check_mode))

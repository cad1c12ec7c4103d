# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of selfhost.bitwarden.print_text: the text on the run's output line by line, as it is (docs: modules/print_text.py)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("text",))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        text = self._task.args.get("text")
        if not isinstance(text, str):
            raise AnsibleActionFail("text must be a string, not a %s: pass the text to print" % type(text).__name__)
        # The worker's display goes to the run's output through ansible-playbook (and to AWX as job output): the
        # callback would JSON-quote it, with \n escapes for a string or one quoted item per line for a list.
        display.display(to_text(text).rstrip("\n"))
        result.update(changed=False, lines=len(text.splitlines()))
        return result

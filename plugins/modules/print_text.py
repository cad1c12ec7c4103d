#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: print_text
short_description: Print text on the run's output as it is, one line per line
version_added: 0.4.0
description:
  - Prints O(text) on the output of the run (the terminal of C(ansible-playbook), the job output of AWX), line by
    line, without the JSON quoting that C(ansible.builtin.debug) gets from the default callback (C(\n) escapes in a
    string, a quoted item per line in a list).
  - The C(selfhost.bitwarden.status) playbook prints its fleet table with it.
  - Runs on the controller only (an action plugin); it never connects to the host.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.info_module
attributes:
  platform:
    platforms: all
options:
  text:
    description: The text to print. A trailing line break is dropped.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Print the fleet report as a table
  selfhost.bitwarden.print_text:
    text: "{{ rows | selfhost.bitwarden.fleet_report }}"
  vars:
    rows:
      - host: vault1.example.com
        version: 2026.8.0
        region: US
        cloud_communication: true
        billing_sync: enabled
        license_sync_age_hours: 5
        last_license_sync: "2026-12-06T01:09:08.4709603+00:00"
        drift: []
"""

RETURN = r"""
lines:
  description: How many lines were printed.
  returned: always
  type: int
  sample: 6
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # Only reached when the action plugin is bypassed (for example by ansible-doc tooling that runs modules).
    module = AnsibleModule(argument_spec={"text": {"type": "str", "required": True}}, supports_check_mode=True)
    module.fail_json(msg="print_text runs on the controller through its action plugin; call it as "
                         "selfhost.bitwarden.print_text in a task")


if __name__ == "__main__":
    main()

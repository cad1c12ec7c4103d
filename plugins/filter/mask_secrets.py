# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that masks secrets in command output (the restart's stderr) before it goes into a message."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mask_secrets
short_description: Mask secrets in command output before it is shown
version_added: 0.4.0
description:
  - Replaces with C(********) every value given in O(secrets), and what looks like a secret in the text itself.
  - >-
    The value of a C(KEY=value) or C(KEY: value) pair whose key names a key, secret, password or token, quoted values
    with spaces included (C(BW_DB_PASSWORD="a b c")).
  - What docker compose quotes from an env file line it cannot read, where a value can stand without its key
    (C(unterminated quoted value 'k3y...), C(in variable name "...")).
  - Any run of 16 or more letters and digits with at least one of each, the shape of an installation key, also when
    it stands alone.
options:
  _input:
    description: The text.
    type: str
    required: true
  secrets:
    description: Values to mask wherever they appear (empty ones are ignored).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Say why the restart failed without its secrets
  ansible.builtin.debug:
    msg: "{{ restart.stderr | selfhost.bitwarden.mask_secrets([client_secret, billing_sync_token]) }}"
"""

RETURN = r"""
_value:
  description: The text with every secret replaced by C(********).
  type: str
"""

import re

MASK = "********"
_PAIR = re.compile(r"""(?i)((?:key|secret|password|token)[A-Za-z_]*\s*[=:]\s*)("[^"\n]*"?|'[^'\n]*'?|\S+)""")
# docker compose (compose-go dotenv) quotes the rest of a line it cannot read: the value, without its key.
_UNTERMINATED = re.compile(r"(unterminated quoted value )[^\n]*?(?= / |\n|$)")
_VARIABLE_NAME = re.compile(r'(in variable name )"(?:[^"\\\n]|\\.)*"')
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}(?![A-Za-z0-9])")


def mask_secrets(text, secrets=()):
    text = "" if text is None else str(text)
    for secret in sorted((str(s) for s in secrets or () if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _PAIR.sub(lambda m: m.group(1) + MASK, text)
    text = _UNTERMINATED.sub(lambda m: m.group(1) + MASK, text)
    text = _VARIABLE_NAME.sub(lambda m: m.group(1) + '"%s"' % MASK, text)
    return _KEY_SHAPED.sub(MASK, text)


class FilterModule:
    def filters(self):
        return {"mask_secrets": mask_secrets}

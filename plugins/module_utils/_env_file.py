# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one editor for Bitwarden env files (``bwdata/env/global.override.env``).

This is for internal selfhost.bitwarden collection use only: names and behaviour may change without notice.

Pure functions over text. ``render(parse(text)) == text`` for every string, and ``edit`` touches only the lines of
the keys it is given, so Setup's generated secrets, comments, order and line endings survive byte for byte.
Keys match case-insensitively because .NET configuration does.
"""

from __future__ import annotations

import collections
import re

MASK = "********"

# Key names whose values are secrets in a Setup-written file (SQL connection string, identity keys, installation id
# and key, passwords, API keys) and anything that looks like them.
_SECRET_KEY = re.compile(r"key|password|passwd|pwd|secret|token|connectionstring|credential|installation_{1,2}id(?![a-z])", re.I)
_SECRET_VALUE = re.compile(r"(password|pwd)\s*=", re.I)
_INLINE_COMMENT = re.compile(r"\s#")

Line = collections.namedtuple("Line", "raw eol")
Edit = collections.namedtuple("Edit", "text collapsed")


def parse(text):
    """Split into lines that keep their own terminator (``\\n``, ``\\r\\n`` or ``""`` for an unterminated last line)."""
    lines = []
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        if end < 0:
            lines.append(Line(text[pos:], ""))
            break
        if end > pos and text[end - 1] == "\r":
            lines.append(Line(text[pos:end - 1], "\r\n"))
        else:
            lines.append(Line(text[pos:end], "\n"))
        pos = end + 1
    return lines


def render(lines):
    return "".join(line.raw + line.eol for line in lines)


def key_of(raw):
    """The variable a line assigns, or None for comments, blank lines and lines without ``=``."""
    name, sep, dummy = raw.partition("=")
    name = name.strip().lstrip("\ufeff").strip()
    if not sep or not name or name.startswith("#"):
        return None
    return name


def unquote(raw_value):
    """The value Docker Compose passes to the container for the text after ``=``."""
    value = raw_value.strip()
    if value[:1] == "'" and "'" in value[1:]:
        return value[1:value.index("'", 1)]
    if value[:1] == '"':
        out = []
        chars = iter(value[1:])
        for char in chars:
            if char == '"':
                return "".join(out)
            out.append(next(chars, "") if char == "\\" else char)
        return value  # no closing quote: taken literally
    return _INLINE_COMMENT.split(value, 1)[0].rstrip()


def values(text, key):
    """The values ``key`` has in ``text``: one per spelling of the key (last occurrence wins), in file order."""
    found = {}
    wanted = key.lower()
    for line in parse(text):
        name = key_of(line.raw)
        if name is not None and name.lower() == wanted:
            found.pop(name, None)
            found[name] = unquote(line.raw.partition("=")[2])
    return tuple(found.values())


def _same_text(dummy_key, old, new):
    return old == new


def edit(text, desired, same=_same_text):
    """Give each key of ``desired`` its value (None: remove the key); leave every other line as it is.

    A key that occurs several times is collapsed into its last line. A line whose value already has the same
    effect (``same(key, old, new)``) stays untouched, so casing of keys or booleans is not churned. Missing keys are
    appended in the order of ``desired`` with the file's line ending. The file ends with a line break exactly when
    it did before (unless its last line is blank).
    """
    for key, value in desired.items():
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("The value for %s contains a line break; an env file value must fit on one line." % key)
        if value is not None and unquote(value) != value:
            raise ValueError("The value for %s would not reach the container unchanged: remove surrounding spaces, quotes "
                             "and ' #'." % key)
    lines = parse(text)
    wanted = {key.lower(): key for key in desired}
    found = collections.Counter()
    last = {}
    for index, line in enumerate(lines):
        name = key_of(line.raw)
        if name is not None and name.lower() in wanted:
            found[name.lower()] += 1
            last[name.lower()] = index

    out = []
    for index, line in enumerate(lines):
        name = key_of(line.raw)
        lower = name.lower() if name is not None else None
        if lower not in wanted:
            out.append(line)
            continue
        key = wanted[lower]
        if desired[key] is None or last[lower] != index:
            continue
        if same(key, unquote(line.raw.partition("=")[2]), desired[key]):
            out.append(line)
        else:
            out.append(Line(line.raw.partition("=")[0] + "=" + desired[key], line.eol))

    eol = next((line.eol for line in lines if line.eol), "\n")
    out.extend(Line(key + "=" + value, eol) for key, value in desired.items() if value is not None and key.lower() not in last)
    if out:
        out = [_terminated(line, eol) for line in out[:-1]] + [out[-1]]
        ends_with_break = text == "" or text.endswith("\n")
        if ends_with_break or not out[-1].raw:  # dropping the break of a blank line would drop the line
            out[-1] = _terminated(out[-1], eol)
        else:
            out[-1] = out[-1]._replace(eol="")
    collapsed = [key for key in desired if desired[key] is not None and found[key.lower()] > 1]
    return Edit(render(out), collapsed)


def _terminated(line, eol):
    """``line`` with a terminator; a stray CR at its end must stay part of the line, not turn into CRLF."""
    if line.eol:
        return line
    return line._replace(eol="\r\n" if line.raw.endswith("\r") else eol)


def mask(text):
    """``text`` with the value of every secret-looking assignment (commented out or not) replaced by MASK."""
    out = []
    in_secret_quote = False  # inside a double-quoted secret value that spans lines
    for line in parse(text):
        if in_secret_quote:
            in_secret_quote = not _closes_quote(line.raw)
            out.append(Line(MASK, line.eol))
            continue
        name, sep, value = line.raw.partition("=")
        if sep and value.strip() and (_SECRET_KEY.search(name) or _SECRET_VALUE.search(value)):
            stripped = value.strip()
            in_secret_quote = stripped.startswith('"') and not _closes_quote(stripped[1:])
            out.append(Line(name + "=" + MASK, line.eol))
        else:
            out.append(line)
    return render(out)


def _closes_quote(rest):
    """True if ``rest`` (text after an opening double quote) contains the closing, unescaped quote."""
    return re.search(r'(^|[^\\])(\\\\)*"', rest) is not None

# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one editor for Bitwarden env files (``bwdata/env/global.override.env``).

This is for internal selfhost.bitwarden collection use only: names and behaviour may change without notice.

Pure functions over text. The file is read with docker compose's env_file grammar (compose-go ``dotenv/parser.go``):
an optional ``export`` prefix, ``=`` or ``:`` between key and value, unquoted values cut at `` #`` and trimmed,
single- and double-quoted values that may span lines (backslash escapes; double quotes expand ``\\n`` and friends),
comment lines, and a UTF-8 BOM at the start. ``$VAR`` interpolation is not modelled (Setup writes none).

``render(parse(text)) == text`` for every string, and ``edit`` touches only the statements of the keys it is given,
so Setup's generated secrets, comments, order and line endings survive byte for byte.
Keys match case-insensitively because .NET configuration does.
"""

from __future__ import annotations

import bisect
import collections
import functools
import re

MASK = "********"

# Key names whose values are secrets in a Setup-written file (SQL connection string, identity keys, installation id
# and key, passwords, API keys) and anything that looks like them.
_SECRET_KEY = re.compile(r"key|password|passwd|pwd|secret|token|connectionstring|credential|installation_{1,2}id(?![a-z])", re.I)
_SECRET_VALUE = re.compile(r"(password|pwd)\s*=", re.I)

# Go's unicode.IsSpace, and compose-go's isSpace (the same without the line break and the rarer spaces).
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANK = "\t\v\f\r \x85\xa0"
_SKIP_SPACE = re.compile("[%s]*" % _SPACE)
_SKIP_BLANK = re.compile("[%s]*" % _BLANK)
_EXPORT = re.compile(r"export[\t\n\f\r ]+")
# Key characters: letters, numbers and _.-[] (\w is letters, numbers and _), with blanks skipped as compose does.
_KEY_CHARS = re.compile(r"[\w.\-\[\]%s]*" % _BLANK)
_QUOTED = {quote: re.compile(r"[^%s\\]*(?:\\[\s\S][^%s\\]*)*%s" % (quote, quote, quote)) for quote in "'\""}
_ESCAPED_PAIR = re.compile(r"\\([\s\S])")
_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})')
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "$": "$", '"': '"', "\\": "\\"}

# One assignment. Offsets: ``start`` (the statement, with any ``export``), ``value_start`` and ``value_end`` (the
# value as written, quotes included; an unquoted value runs to the end of its line, inline comment included);
# absolute in ``_scan``, relative to the block in ``Block.statements``. ``quote``: ', " or "".
Statement = collections.namedtuple("Statement", "key value start value_start value_end quote")
# One or more whole lines (several when a quoted value spans lines), without the final terminator ``eol``
# (``\n``, ``\r\n`` or ``""`` for an unterminated last line), and the statements that start in them.
Block = collections.namedtuple("Block", "raw eol statements")
Edit = collections.namedtuple("Edit", "text collapsed")
_Scan = collections.namedtuple("_Scan", "statements error error_offset")


def _unescape(match):
    """compose-go expandEscapes: the shell escapes Go's UnquoteChar knows; anything else stays as written."""
    sequence = match.group(0)
    if sequence[1] != "0":
        return _ESCAPES.get(sequence[1], sequence)
    digits = sequence[2:]  # "\0ddd" is the octal escape "\ddd"; Go needs exactly three octal digits
    if len(digits) == 3 and all(char in "01234567" for char in digits) and int(digits, 8) < 256:
        return chr(int(digits, 8))
    return "\\" + digits


def _line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def _scan_text(text):
    """Every assignment docker compose reads from ``text``, in order, and the first error it would stop at.

    The error names a line and a reason, never the line's text (it may hold a secret).
    """
    statements = []
    length = len(text)
    pos = 1 if text.startswith("\ufeff") else 0
    while True:
        pos = _SKIP_SPACE.match(text, pos).end()
        if pos >= length:
            return _Scan(tuple(statements), None, None)
        if text[pos] == "#":
            pos = text.find("\n", pos)
            if pos < 0:
                return _Scan(tuple(statements), None, None)
            continue
        start = pos
        if _EXPORT.match(text, pos):
            pos = _SKIP_BLANK.match(text, pos + len("export")).end()
        key_end = _KEY_CHARS.match(text, pos).end()
        separator = text[key_end] if key_end < length else ""
        if separator and separator not in "=:\n":
            return _Scan(tuple(statements), "line %d: unexpected character in a variable name" % _line_of(text, key_end), key_end)
        if pos >= length:
            return _Scan(tuple(statements), "line %d: export without a variable" % _line_of(text, start), start)
        # A last line without separator is read as a value for the empty key, as compose-go does.
        key = text[pos:key_end].rstrip(_SPACE) if separator else ""
        value_start = _SKIP_BLANK.match(text, key_end + 1 if separator else pos).end()
        if " " in key:
            return _Scan(tuple(statements), "line %d: key cannot contain a space" % _line_of(text, start), start)
        if separator == "\n":  # KEY alone: the value comes from docker compose's own environment
            pos = value_start
            continue
        quote = text[value_start] if value_start < length and text[value_start] in "'\"" else ""
        if quote:
            match = _QUOTED[quote].match(text, value_start + 1)
            if match is None:
                return _Scan(tuple(statements), "line %d: unterminated quoted value" % _line_of(text, value_start), value_start)
            value_end = match.end()
            value = _ESCAPED_PAIR.sub(lambda pair: pair.group(1) if pair.group(1) == quote else pair.group(0),
                                      text[value_start + 1:value_end - 1])
            if quote == '"':
                value = _ESCAPE.sub(_unescape, value)
        else:
            value_end = text.find("\n", value_start)
            value_end = length if value_end < 0 else value_end
            value = text[value_start:value_end].split(" #", 1)[0].rstrip(_SPACE)
        statements.append(Statement(key, value, start, value_start, value_end, quote))
        pos = value_end


# The module asks several questions about one text (and then about the edited one): scan each once.
_scan = functools.lru_cache(maxsize=2)(_scan_text)


def problem(text):
    """Why docker compose would refuse ``text`` (``line N: reason``), or None."""
    return _scan(text).error


@functools.lru_cache(maxsize=2)
def _blocks(text):
    parts = text.split("\n")
    terminated = len(parts) - 1  # every part but the last ended with a line break
    if parts[-1] == "":
        parts.pop()
    offsets = []
    pos = 0
    for part in parts:
        offsets.append(pos)
        pos += len(part) + 1
    owned = collections.defaultdict(list)  # first line -> the statements that start on it
    reach = {}  # first line -> the last line its statements run into
    for statement in _scan(text).statements:
        first = bisect.bisect_right(offsets, statement.start) - 1
        last = bisect.bisect_right(offsets, max(statement.start, statement.value_end - 1)) - 1
        owned[first].append(statement)
        if last > reach.get(first, first):
            reach[first] = last
    blocks = []
    index = 0
    while index < len(parts):
        if index not in owned:  # a comment or blank line (most of a big file): one line, no statement
            part = parts[index]
            if index < terminated and part.endswith("\r"):
                blocks.append(Block(part[:-1], "\r\n", ()))
            else:
                blocks.append(Block(part, "\n" if index < terminated else "", ()))
            index += 1
            continue
        last = reach.get(index, index)
        probe = index + 1
        while probe <= last:
            last = max(last, reach.get(probe, probe))
            probe += 1
        offset = offsets[index]
        end = offsets[last] + len(parts[last])
        eol = "\n" if last < terminated else ""
        if eol and parts[last].endswith("\r"):
            end -= 1
            eol = "\r\n"
        own = tuple(Statement(statement.key, statement.value, statement.start - offset, statement.value_start - offset,
                              statement.value_end - offset, statement.quote)
                    for line in range(index, last + 1) for statement in owned.get(line, ()))
        blocks.append(Block(text[offset:end], eol, own))
        index = last + 1
    return tuple(blocks)


def parse(text):
    """The blocks of ``text``: ``render(parse(text)) == text``."""
    return list(_blocks(text))


def render(blocks):
    return "".join(block.raw + block.eol for block in blocks)


def values(text, key):
    """The values ``key`` has in ``text``: one per spelling of the key (last occurrence wins), in file order."""
    found = {}
    wanted = key.lower()
    for statement in _scan(text).statements:
        if statement.key.lower() == wanted:
            found.pop(statement.key, None)
            found[statement.key] = statement.value
    return tuple(found.values())


def reads_back(value):
    """True if ``KEY=<value>`` gives the container exactly ``value``."""
    scan = _scan_text("K=%s\n" % value)
    return "\n" not in value and "\r" not in value and "$" not in value and scan.error is None and \
        [(statement.key, statement.value) for statement in scan.statements] == [("K", value)]


def _same_text(dummy_key, old, new):
    return old == new


def _written(value, quote):
    """``value`` as written after the separator, quoted when the old value was (so the rest of its line stays what it
    was): in the same quotes where they can hold it as is, else in double quotes with backslash escapes."""
    if not quote or quote == "'" and "'" not in value and "\\" not in value:
        return quote + value + quote
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def edit(text, desired, same=_same_text):
    """Give each key of ``desired`` its value (None: remove the key); leave every other statement as it is.

    A key that occurs several times is collapsed into its last statement (an ``export`` prefix, a ``:`` separator and
    quotes are kept). A statement whose value already has the same effect (``same(key, old, new)``) stays untouched,
    so casing of keys or booleans is not churned. Missing keys are appended in the order of ``desired`` with the
    file's line ending. The file ends with a line break exactly when it did before (unless its last line is blank).
    Raises ValueError for a file docker compose cannot read and for values it would not pass on unchanged.
    """
    error = problem(text)
    if error:
        raise ValueError("docker compose cannot read the env file (%s)." % error)
    for key, value in desired.items():
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("The value for %s contains a line break; an env file value must fit on one line." % key)
        if value is not None and not reads_back(value):
            raise ValueError("The value for %s would not reach the container unchanged: remove surrounding spaces, quotes, "
                             "'$' and ' #'." % key)
    blocks = parse(text)
    wanted = {key.lower(): key for key in desired}
    found = collections.Counter()
    last = {}
    for index, block in enumerate(blocks):
        for number, statement in enumerate(block.statements):
            if statement.key.lower() in wanted:
                found[statement.key.lower()] += 1
                last[statement.key.lower()] = (index, number)

    out = []
    for index, block in enumerate(blocks):
        if not any(statement.key.lower() in wanted for statement in block.statements):
            out.append(block)
            continue
        raw = block.raw
        for number, statement in reversed(list(enumerate(block.statements))):
            lower = statement.key.lower()
            if lower not in wanted:
                continue
            key = wanted[lower]
            if desired[key] is not None and last[lower] == (index, number):
                if not same(key, statement.value, desired[key]):
                    raw = raw[:statement.value_start] + _written(desired[key], statement.quote) + raw[statement.value_end:]
            elif len(block.statements) == 1:
                raw = None
            else:
                raw = raw[:statement.start] + raw[statement.value_end:]
        if raw is not None:
            out.append(block._replace(raw=raw))

    eol = next((block.eol for block in blocks if block.eol), "\n")
    out.extend(Block(key + "=" + value, eol, ()) for key, value in desired.items() if value is not None and key.lower() not in last)
    if out:
        out = [_terminated(block, eol) for block in out[:-1]] + [out[-1]]
        ends_with_break = text == "" or text.endswith("\n")
        if ends_with_break or not out[-1].raw:  # dropping the break of a blank line would drop the line
            out[-1] = _terminated(out[-1], eol)
        else:
            out[-1] = out[-1]._replace(eol="")
    new_text = render(out)
    for key, value in desired.items():  # the promise, checked: compose reads what was asked for, once
        now = values(new_text, key)
        if problem(new_text) or (now != () if value is None else len(now) != 1 or not same(key, now[0], value)):
            raise ValueError("The edit of %s would not read back as written; the env file was left unchanged." % key)
    collapsed = [key for key in desired if desired[key] is not None and found[key.lower()] > 1]
    return Edit(new_text, collapsed)


def _terminated(block, eol):
    """``block`` with a terminator; a stray CR at its end must stay part of the line, not turn into CRLF."""
    if block.eol:
        return block
    return block._replace(eol="\r\n" if block.raw.endswith("\r") else eol)


def _is_secret(key, value):
    return bool(value.strip()) and bool(_SECRET_KEY.search(key) or _SECRET_VALUE.search(value))


def _masked(written):
    """Every line of a value as written replaced by MASK (the diff keeps its line count)."""
    return "\n".join(MASK + ("\r" if part.endswith("\r") else "") for part in written.split("\n"))


_COMMENTED = re.compile(r"(\s*#[#\s]*(?:export\s+)?)([^=:]*)([=:])(.*)$")


def _mask_comment(raw):
    """A commented-out ``KEY=value`` or ``KEY: value`` with a secret-looking key or value, masked."""
    if "=" not in raw and ":" not in raw:
        return raw
    match = _COMMENTED.match(raw)
    if match and _is_secret(match.group(2), match.group(4)):
        return match.group(1) + match.group(2) + match.group(3) + MASK
    return raw


def mask(text):
    """``text`` with the value of every secret-looking assignment (commented out or not) replaced by MASK.

    Lines after the point where docker compose would stop reading are masked whole (comments as comments).
    """
    scan = _scan(text)
    out = []
    offset = 0
    for block in parse(text):
        raw = block.raw
        for statement in reversed(block.statements):
            if _is_secret(statement.key, statement.value):
                raw = raw[:statement.value_start] + _masked(raw[statement.value_start:statement.value_end]) + raw[statement.value_end:]
        if not block.statements:
            unread = scan.error_offset is not None and offset + len(raw) > scan.error_offset
            raw = _mask_comment(raw) if raw.lstrip().startswith("#") or not raw.strip() else (MASK if unread else raw)
        out.append(raw + block.eol)
        offset += len(block.raw) + len(block.eol)
    return "".join(out)

"""global.override.env: read it as docker compose's env_file does, write and rewrite it as Setup does (contract 6.2)."""

import re
import secrets
import string
import unicodedata

ALNUM = string.ascii_letters + string.digits
VAR_RE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class EnvFileError(ValueError):
    """docker compose refuses the file (the message is what compose prints)."""


ALNUM_TABLE = bytes(ord(ALNUM[i % len(ALNUM)]) for i in range(256))


def random_string(length):
    """Random letters and digits like Setup's SecureRandomString (the slight modulo bias is irrelevant here)."""
    return secrets.token_bytes(length).translate(ALNUM_TABLE).decode("ascii")


# --- reading: docker compose env_file semantics -------------------------------------------------------------


def _expand(value, env):
    """Interpolate $VAR / ${VAR} / ${VAR:-default} with the keys defined earlier in the file ($$ -> $)."""
    def repl(match):
        if match.group(0) == "$$":
            return "$"
        expr = match.group(1) if match.group(1) is not None else match.group(2)
        for sep in (":-", "-", ":+", "+", ":?", "?"):
            if sep in expr:
                name, arg = expr.split(sep, 1)
                present = name in env and (env[name] != "" or not sep.startswith(":"))
                if sep.endswith("-"):
                    return env[name] if present else arg
                if sep.endswith("+"):
                    return arg if present else ""
                if not present:
                    raise EnvFileError(f"required variable {name} is missing a value: {arg}")
                return env[name]
        return env.get(expr, "")
    return VAR_RE.sub(repl, value)


# compose-go's isSpace (dotenv/parser.go): blanks, but not the line break; unicode.IsSpace adds these.
BLANKS = "\t\v\f\r \x85\xa0"
SPACES = BLANKS + "\n\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200b)))
EXPORT_RE = re.compile(r"export[\t\n\f\r ]+")  # Go's \s
ESCAPE_RE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})')
GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"', "\\": "\\"}


def _go_quote(text):
    """Go's %q, near enough for error messages."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _expand_escapes(value):
    """compose-go expandEscapes: \\$ becomes $$ for interpolation, \\0ddd is octal, unknown escapes stay as written."""
    def repl(match):
        seq = match.group(0)
        if seq == "\\$":
            return "$$"
        if seq[1] == "0":
            digits = seq[2:]
            if len(digits) == 3 and set(digits) <= set("01234567") and int(digits, 8) < 256:
                return chr(int(digits, 8))
            return "\\" + digits
        return GO_ESCAPES.get(seq[1], seq)
    return ESCAPE_RE.sub(repl, value)


def _is_key_char(char):
    return char in "_.-[]" or unicodedata.category(char)[0] in "LN"


def load_compose_env(data):
    """Return {key: value} for the bytes of an env_file as docker compose loads them: a leading UTF-8 BOM is skipped
    (compose-go dotenv/godotenv.go parseWithLookup); bytes that are not UTF-8 pass through into values."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return parse_compose_env(data.decode("utf-8", "surrogateescape"))


def parse_compose_env(text):
    """Return {key: value} the way docker compose parses an env_file's text (compose-go dotenv/parser.go; later keys
    win; no BOM handling here, see load_compose_env)."""
    env = {}
    pos = 0
    line = 1
    length = len(text)
    while True:
        # getStatementStart: skip white space (line breaks included) and comment lines
        while pos < length and text[pos] in SPACES:
            line += text[pos] == "\n"
            pos += 1
        if pos >= length:
            return env
        if text[pos] == "#":
            end = text.find("\n", pos)
            if end < 0:
                return env
            pos = end
            continue
        # locateKeyName
        if EXPORT_RE.match(text, pos):
            pos += len("export")
            while pos < length and text[pos] in BLANKS:
                pos += 1
        if pos >= length:
            raise EnvFileError("zero length string")
        start = pos
        key = ""
        inherited = False
        rest = pos
        while pos < length:
            char = text[pos]
            if char in BLANKS:
                pos += 1
                continue
            if char in "=:\n":
                key = text[start:pos]
                inherited = char == "\n"
                rest = pos + 1
                break
            if not _is_key_char(char):
                raise EnvFileError(f"line {line}: unexpected character {_go_quote(char)} in variable name "
                                   f"{_go_quote(text[start:].split(chr(10), 1)[0])}")
            pos += 1
        if inherited and " " not in key:
            line += 1
        key = key.rstrip(SPACES)
        pos = rest
        while pos < length and text[pos] in BLANKS:
            pos += 1
        if " " in key:
            raise EnvFileError(f"line {line}: key cannot contain a space")
        if inherited:
            # KEY alone takes the value from the environment of `docker compose`, which has none of ours
            continue
        # extractVarValue
        quote = text[pos] if pos < length and text[pos] in "'\"" else None
        if quote is None:
            end = text.find("\n", pos)
            end = length if end < 0 else end
            line += 1
            env[key] = _expand(text[pos:end].split(" #", 1)[0].rstrip(SPACES), env)
            pos = end + 1
            continue
        chars = []
        escaped = False
        i = pos + 1
        while i < length:
            char = text[i]
            line += char == "\n"
            if char != quote:
                if not escaped and char == "\\":
                    escaped = True
                elif escaped:
                    escaped = False
                    chars.append("\\" + char)
                else:
                    chars.append(char)
            elif escaped:
                escaped = False
                chars.append(char)
            else:
                break
            i += 1
        else:
            end = text.find("\n", pos)
            raise EnvFileError(f"line {line}: unterminated quoted value {text[pos:length if end < 0 else end]}")
        value = "".join(chars)
        env[key] = _expand(_expand_escapes(value), env) if quote == '"' else value
        pos = i + 1


# --- writing: Setup's EnvironmentFileBuilder --------------------------------------------------------------


def sql_connection_string(password):
    """Setup's SqlConnectionStringBuilder output, wrapped in quotes with inner quotes escaped."""
    conn = (
        "Data Source=tcp:mssql,1433;Initial Catalog=vault;Persist Security Info=False;User ID=sa;"
        f'Password="{password}";Multiple Active Result Sets=False;Connect Timeout=30;Encrypt=True;'
        "Trust Server Certificate=True"
    )
    return '"' + conn.replace('"', '\\"') + '"'


def setup_values(url, cloud_region, installation_id, installation_key, push_notifications):
    """The ordered (key, value) pairs Setup's install writes (Init), with freshly generated secrets."""
    domain = re.sub(r"^[a-z]+://", "", url).split("/")[0].split(":")[0]
    values = [
        ("globalSettings__baseServiceUri__vault", url),
        ("globalSettings__baseServiceUri__cloudRegion", cloud_region),
        ("globalSettings__sqlServer__connectionString", sql_connection_string(random_string(32))),
        ("globalSettings__sqlServer__migrationExecutionTimeoutSeconds", ""),
        ("globalSettings__identityServer__certificatePassword", random_string(32)),
        ("globalSettings__internalIdentityKey", random_string(64)),
        ("globalSettings__oidcIdentityClientKey", random_string(64)),
        ("globalSettings__duo__aKey", random_string(64)),
        ("globalSettings__installation__id", installation_id),
        ("globalSettings__installation__key", installation_key),
        ("globalSettings__yubico__clientId", "REPLACE"),
        ("globalSettings__yubico__key", "REPLACE"),
        ("globalSettings__mail__replyToEmail", f"no-reply@{domain}"),
        ("globalSettings__mail__smtp__host", "REPLACE"),
        ("globalSettings__mail__smtp__port", "587"),
        ("globalSettings__mail__smtp__ssl", "false"),
        ("globalSettings__mail__smtp__username", "REPLACE"),
        ("globalSettings__mail__smtp__password", "REPLACE"),
        ("globalSettings__disableUserRegistration", "false"),
        ("globalSettings__hibpApiKey", "REPLACE"),
        ("adminSettings__admins", ""),
    ]
    if not push_notifications:
        values.append(("globalSettings__pushRelayBaseUri", "REPLACE"))
    return values


def cloud_communication_values(region):
    """The lines of the help page's step 1 for ``region``, as an owner adds them by hand."""
    domain = "bitwarden.eu" if region == "EU" else "bitwarden.com"
    return [
        ("globalSettings__enableCloudCommunication", "true"),
        ("globalSettings__installation__identityUri", f"https://identity.{domain}"),
        ("globalSettings__installation__apiUri", f"https://api.{domain}"),
        ("globalSettings__pushRelayBaseUri", f"https://push.{domain}"),
    ]


def render(values):
    """One KEY=VALUE per line, LF, nothing else (EnvironmentFile.hbs)."""
    return "".join(f"{key}={value}\n" for key, value in values)


def rebuild(text, url, push_notifications):
    """What `bitwarden.sh rebuild/updateconf` leave behind (Setup BuildForUpdater): values kept, layout normalized."""
    init = dict(setup_values(url, "US", "00000000-0000-0000-0000-000000000000", "", push_notifications))
    values = dict(init)
    for line in text.split("\n"):
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        if key not in init:
            value = value.replace('\\"', '"')
        values[key] = value
    if push_notifications and values.get("globalSettings__pushRelayBaseUri") == "REPLACE":
        del values["globalSettings__pushRelayBaseUri"]
    if "globalSettings__baseServiceUri__vault" in values:
        values["globalSettings__baseServiceUri__vault"] = url
    return render(values.items())

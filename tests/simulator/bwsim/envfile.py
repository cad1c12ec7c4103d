"""global.override.env: read it as docker compose's env_file does, write and rewrite it as Setup does (contract 6.2)."""

import re
import secrets
import string

ALNUM = string.ascii_letters + string.digits
KEY_CHARS = set(string.ascii_letters + string.digits + "_.-[]")
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


def _unescape_double(value):
    """Backslash escapes inside "...": \\n, \\r, \\X -> X; \\$ stays an escaped dollar for interpolation."""
    out = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"n": "\n", "r": "\r", "$": "$$"}.get(nxt, nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def parse_compose_env(text):
    """Return {key: value} the way docker compose loads an env_file (later keys win)."""
    env = {}
    pos = 0
    line = 1
    length = len(text)
    while pos < length:
        # statement start: skip blank space and comment lines
        while pos < length and text[pos] in " \t\r\n":
            if text[pos] == "\n":
                line += 1
            pos += 1
        if pos >= length:
            break
        if text[pos] == "#":
            end = text.find("\n", pos)
            pos = length if end < 0 else end
            continue
        if text.startswith("export ", pos):
            pos += len("export ")
        start = pos
        inherited = False
        while pos < length:
            char = text[pos]
            if char in "=:":
                break
            if char == "\n":
                inherited = True
                break
            if char not in " \t" and char not in KEY_CHARS and not char.isalnum():
                raise EnvFileError(f"line {line}: unexpected character {char!r} in variable name")
            pos += 1
        else:
            inherited = True
        key = text[start:pos].rstrip()
        if inherited:
            # KEY alone takes the value from the environment of `docker compose`, which has none of ours
            continue
        pos += 1
        while pos < length and text[pos] in " \t":
            pos += 1
        quote = text[pos] if pos < length and text[pos] in "'\"" else None
        if quote is None:
            end = text.find("\n", pos)
            end = length if end < 0 else end
            value = text[pos:end].split(" #", 1)[0].rstrip()
            env[key] = _expand(value, env)
            pos = end
            continue
        i = pos + 1
        escaped = False
        while i < length:
            char = text[i]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                break
            i += 1
        else:
            end = text.find("\n", pos)
            raise EnvFileError(f"line {line}: unterminated quoted value {text[pos:length if end < 0 else end]}")
        raw = text[pos + 1:i]
        line += raw.count("\n")
        env[key] = _expand(_unescape_double(raw), env) if quote == '"' else raw
        pos = i + 1
    return env


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

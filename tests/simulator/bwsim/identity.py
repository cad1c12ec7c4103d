"""The self-hosted identity server: /identity/connect/token and friends (contract 1, 5)."""

import base64
import json
import re
import secrets
import time
import urllib.parse

from .httpserver import json_response

DEVICE_TYPES = (
    "Android iOS ChromeExtension FirefoxExtension OperaExtension EdgeExtension WindowsDesktop MacOsDesktop LinuxDesktop "
    "ChromeBrowser FirefoxBrowser OperaBrowser EdgeBrowser IEBrowser UnknownBrowser AndroidAmazon UWP SafariBrowser "
    "VivaldiBrowser VivaldiExtension SafariExtension SDK Server WindowsCLI MacOsCLI LinuxCLI DuckDuckGoBrowser"
).split()
VERSION_HEADER_MISSING = (
    "No client version header found, required to prevent encryption errors. "
    'Please confirm your client is supplying the header: "Bitwarden-Client-Version"'
)
TOKEN_LIFETIME = 3600
SYSTEM_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+){0,2}$")


def system_version_ok(text):
    """System.Version.TryParse: 2 to 4 dot-separated non-negative integers, nothing else."""
    return bool(text) and bool(SYSTEM_VERSION_RE.match(text.strip())) and all(int(p) < 2**31 for p in text.strip().split("."))


def device_type_ok(text):
    """Enum.TryParse<DeviceType>: any integer or an exact member name."""
    text = text.strip()
    return bool(re.match(r"^[+-]?\d+$", text)) or text in DEVICE_TYPES


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _token_error(error, description=None, message=None):
    body = {"error": error}
    if description is not None:
        body["error_description"] = description
    if message is not None:
        body["ErrorModel"] = {"Message": message, "Object": "error"}
    return json_response(400, body, [("Cache-Control", "no-store, no-cache, max-age=0"), ("Pragma", "no-cache")])


class Principal:
    """What a bearer token stands for (claims are a snapshot taken when the token was issued)."""

    def __init__(self, kind, subject, scope, owner_orgs, admin_orgs, expires):
        self.kind = kind
        self.subject = subject
        self.scope = scope
        self.owner_orgs = owner_orgs
        self.admin_orgs = admin_orgs
        self.expires = expires

    @property
    def application(self):
        """Policy "Application": amr=Application and scope api (personal API keys)."""
        return self.kind == "user" and self.scope == "api"


class Identity:
    def __init__(self, instance):
        self.instance = instance

    # -- helpers ---------------------------------------------------------------------------------------
    def _form(self, request):
        pairs = urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {}
        for key, value in pairs:
            form.setdefault(key.lower(), value)
        auth = request.header("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                ident, dummy, secret = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
                form["client_id"] = urllib.parse.unquote_plus(ident)
                form["client_secret"] = urllib.parse.unquote_plus(secret)
            except ValueError:
                pass
        return form

    def _client(self, client_id, secret):
        """DynamicClientStore: prefix before the first '.' picks the provider."""
        inst = self.instance
        prefix, dummy, ident = client_id.partition(".")
        ident = ident.lower()
        if prefix == "user":
            user = inst.users.get(ident)
            if user and secrets.compare_digest(secret, user["secret"]):
                return "user", ident, {"api"}
        elif prefix == "organization":
            if ident == inst.organization_id and secrets.compare_digest(secret, inst.org_api_key):
                return "organization", ident, {"api.organization"}
        return None

    def issue(self, kind, subject, scope):
        inst = self.instance
        now = int(time.time())
        user = inst.users.get(subject) if kind == "user" else None
        owner = [inst.organization_id] if user and user["type"] == 0 else []
        admin = [inst.organization_id] if user and user["type"] == 1 else []
        claims = {"iss": inst.url + "/identity", "nbf": now, "iat": now, "exp": now + TOKEN_LIFETIME, "scope": [scope],
                  "client_id": f"{kind}.{subject}", "sub": subject, "jti": secrets.token_hex(16)}
        if kind == "user":
            claims.update({"amr": ["Application"], "type": "User", "orgowner": owner, "orgadmin": admin})
        else:
            claims["type"] = "Organization"
        header = {"alg": "RS256", "kid": "bwsim", "typ": "at+jwt"}
        token = ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(secrets.token_bytes(64))))
        inst.tokens[token] = Principal(kind, subject, scope, owner, admin, now + TOKEN_LIFETIME)
        return token

    # -- routes -----------------------------------------------------------------------------------------
    def token(self, request, _params):
        inst = self.instance
        inst.counters.bump("token_requests")
        if "application/x-www-form-urlencoded" not in request.header("Content-Type", "").lower():
            return _token_error("invalid_request")
        form = self._form(request)
        client = self._client(form.get("client_id", ""), form.get("client_secret", ""))
        if client is None:
            return _token_error("invalid_client")
        kind, subject, allowed = client
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            known = grant_type in ("authorization_code", "password", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
                                   "webauthn")
            return _token_error("unauthorized_client" if known else "unsupported_grant_type")
        requested = set(form.get("scope", "").split()) or allowed
        if not requested <= allowed:
            return _token_error("invalid_scope")
        scope = " ".join(sorted(requested))
        if kind == "user":
            error = self._validate_user_request(request, form)
            if error is not None:
                if inst.spec["error_delay"]:
                    time.sleep(inst.spec["error_delay"])
                return error
            inst.register_device(subject, form["deviceidentifier"].strip())
        body = {"access_token": self.issue(kind, subject, scope), "expires_in": TOKEN_LIFETIME, "token_type": "Bearer", "scope": scope}
        if kind == "user":
            body.update({
                "PrivateKey": "2.bwsimPrivateKey|bwsim|bwsim",
                "Key": "2.bwsimUserKey|bwsim|bwsim",
                "MasterPasswordPolicy": {"Object": "masterPasswordPolicy"},
                "ForcePasswordReset": False,
                "Kdf": 0,
                "KdfIterations": 600000,
                "KdfMemory": None,
                "KdfParallelism": None,
                "UserDecryptionOptions": {"HasMasterPassword": True, "Object": "userDecryptionOptions"},
            })
        return json_response(200, body, [("Cache-Control", "no-store, no-cache, max-age=0"), ("Pragma", "no-cache")])

    def _validate_user_request(self, request, form):
        """BaseRequestValidator order: client version, then device (SSO/2FA never apply to API keys)."""
        inst = self.instance
        if inst.version >= (2026, 3, 0) and not system_version_ok(request.header("Bitwarden-Client-Version", "")):
            return _token_error("version_header_missing", VERSION_HEADER_MISSING, VERSION_HEADER_MISSING)
        device_ok = all(form.get(key, "").strip() for key in ("devicetype", "deviceidentifier", "devicename"))
        if device_ok and device_type_ok(form["devicetype"]):
            return None
        if inst.version >= (2025, 1, 0):
            return _token_error("device_error", "No device information provided", "no device information provided")
        return _token_error("invalid_grant", None, "No device information provided.")

    def alive(self, _request, _params):
        return json_response(200, utc_now_json())

    def discovery(self, _request, _params):
        base = self.instance.url + "/identity"
        return json_response(200, {
            "issuer": base,
            "jwks_uri": base + "/.well-known/openid-configuration/jwks",
            "authorization_endpoint": base + "/connect/authorize",
            "token_endpoint": base + "/connect/token",
            "userinfo_endpoint": base + "/connect/userinfo",
            "end_session_endpoint": base + "/connect/endsession",
            "check_session_iframe": base + "/connect/checksession",
            "revocation_endpoint": base + "/connect/revocation",
            "introspection_endpoint": base + "/connect/introspect",
            "device_authorization_endpoint": base + "/connect/deviceauthorization",
            "frontchannel_logout_supported": True,
            "frontchannel_logout_session_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "scopes_supported": ["api", "api.push", "api.licensing", "api.organization", "api.installation", "internal",
                                 "api.secrets", "offline_access"],
            "claims_supported": [],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", "implicit", "password",
                                      "urn:ietf:params:oauth:grant-type:device_code", "webauthn"],
            "response_types_supported": ["code", "token", "id_token", "id_token token", "code id_token", "code token",
                                         "code id_token token"],
            "response_modes_supported": ["form_post", "query", "fragment"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "request_parameter_supported": True,
        })


def utc_now_json():
    """DateTime.UtcNow as System.Text.Json writes it: up to 7 fraction digits, trailing zeros dropped, Z."""
    return dotnet_datetime(time.time_ns(), "Z")


def dotnet_datetime(ns, suffix):
    seconds, rem = divmod(ns, 1_000_000_000)
    fraction = f"{rem // 100:07d}".rstrip("0")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return stamp + (("." + fraction) if fraction else "") + suffix

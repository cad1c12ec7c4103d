"""The Bitwarden US and EU clouds, in-process: installations, cloud organizations, the licensing endpoints.

Self-hosted instances reach them by URL (contract 3.2): only the real cloud hosts resolve, anything else is
unreachable. Nothing here opens a socket.
"""

import base64
import collections
import datetime
import json
import math
import secrets
import threading
import time
import urllib.parse
import uuid

HOSTS = {
    "identity.bitwarden.com": ("US", "identity"),
    "api.bitwarden.com": ("US", "api"),
    "identity.bitwarden.eu": ("EU", "identity"),
    "api.bitwarden.eu": ("EU", "api"),
}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error"}
GRACE_PERIOD_DAYS = 60
STATUS_NAMES = {200: "OK", 400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests",
                500: "InternalServerError"}

# IpRateLimitOptions.GeneralRules of the cloud's services, per client IP (server src/Identity/appsettings.json and
# src/Api/appsettings.json; production may differ): (method or "*", path or "*", period seconds, period text, limit).
# Only the rules that match a route the clouds serve are listed.
RATE_RULES = {
    "identity": (("*", "*", 60, "1m", 60), ("*", "*", 1, "1s", 5), ("POST", "/connect/token", 60, "1m", 10)),
    "api": (("POST", "*", 60, "1m", 60), ("POST", "*", 1, "1s", 5), ("GET", "*", 60, "1m", 200),
            ("GET", "/alive", 60, "1m", 5)),
}


class Unreachable(Exception):
    """DNS/TCP failure, as HttpClient would raise it."""

    def __init__(self, host, port):
        super().__init__(f"Name or service not known ({host}:{port})")
        self.host, self.port = host, port


class CloudResponse:
    def __init__(self, status, body=None, headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def reason(self):
        return REASONS.get(self.status, "")


class RateLimiter:
    """AspNetCoreRateLimit's IP rate limiting as the cloud configures it (CustomIpRateLimitMiddleware).

    Every matching rule counts, in a sliding window: stricter than the library's fixed windows (a burst across a
    window boundary is refused here), so a pace that passes here passes there. A refused request does not count
    (StackBlockedRequests false). The answer is 429 with Retry-After and the ErrorResponseModel JSON
    "Slow down! Too many requests. Try again in {rule.Period}.".
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._hits = collections.defaultdict(collections.deque)  # (egress, service, rule) -> monotonic times
        self.requests = collections.Counter()  # egress -> requests that reached the limiter
        self.limited = collections.Counter()   # egress -> 429s answered

    def admit(self, service, method, path, egress):
        """None when the request may pass (it is counted), else the 429 CloudResponse."""
        rules = [rule for rule in RATE_RULES[service]
                 if rule[0] in ("*", method.upper()) and rule[1] in ("*", path.rstrip("/").lower() or "/")]
        now = time.monotonic()
        with self._lock:
            self.requests[egress] += 1
            blocked = None
            for rule in rules:
                hits = self._hits[(egress, service, rule)]
                while hits and hits[0] <= now - rule[2]:
                    hits.popleft()
                if len(hits) >= rule[4]:
                    wait = hits[0] + rule[2] - now
                    if blocked is None or wait > blocked[0]:
                        blocked = (wait, rule)
            if blocked is not None:
                self.limited[egress] += 1
                wait, rule = blocked
                return CloudResponse(429, {"message": f"Slow down! Too many requests. Try again in {rule[3]}.",
                                           "validationErrors": None, "exceptionMessage": None,
                                           "exceptionStackTrace": None, "innerExceptionMessage": None,
                                           "object": "error"},
                                     {"Retry-After": str(max(1, math.ceil(wait)))})
            for rule in rules:
                self._hits[(egress, service, rule)].append(now)
        return None

    def snapshot(self):
        with self._lock:
            return {"requests": sum(self.requests.values()), "rate_limited": sum(self.limited.values()),
                    "by_egress": {egress: {"requests": self.requests[egress], "rate_limited": self.limited[egress]}
                                  for egress in sorted(self.requests)}}


class Cloud:
    """One region: its installations, its organizations, and the tokens its identity server issued."""

    def __init__(self, region):
        self.region = region
        self.installations = {}
        self.organizations = {}
        self.rate_limiter = RateLimiter()
        self._tokens = {}
        self._lock = threading.Lock()

    def add_installation(self, installation_id, key):
        self.installations[installation_id] = {"key": key, "enabled": True}

    def add_organization(self, org_id, license_key, billing_sync_key, name, subscription_days=365):
        period_end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=subscription_days)
        self.organizations[org_id] = {"license_key": license_key, "billing_sync_key": billing_sync_key, "name": name,
                                      "period_end": period_end, "seats": 50, "subscription": "active", "deleted": False}

    def _organization(self, org_id):
        org = self.organizations.get(str(org_id).lower())
        return None if org is None or org.get("deleted") else org

    @staticmethod
    def _billing_sync_key_valid(org, key):
        """ValidateBillingSyncKeyCommand: an unknown organization is "Invalid organization"; an organization that never
        generated a key is a null reference (the 500 of ExceptionHandlerFilterAttribute)."""
        if org is None:
            return CloudResponse(400, {"message": "Invalid organization"})
        if not (key or "").strip():
            return False
        if org["billing_sync_key"] is None:
            return CloudResponse(500, {"message": "An unhandled server error has occurred."})
        return key == org["billing_sync_key"]

    def renew(self, org_id, days, seats=None):
        """The customer paid for another period: the subscription ends `days` later; a license generated from now on
        carries the new dates (and seats). Self-hosted servers see it only when their license is synced."""
        with self._lock:
            org = self.organizations[org_id]
            org["period_end"] += datetime.timedelta(days=days)
            if seats is not None:
                org["seats"] = int(seats)
            return {"period_end": org["period_end"].isoformat().replace("+00:00", "Z"), "seats": org["seats"]}

    def token(self, form):
        """POST /connect/token with client_credentials for installation.<id>."""
        client_id = form.get("client_id", "")
        prefix, dummy, ident = client_id.partition(".")
        installation = self.installations.get(ident.lower()) if prefix == "installation" else None
        if installation is None or not installation["enabled"] or not secrets.compare_digest(form.get("client_secret", ""), installation["key"]):
            return CloudResponse(400, {"error": "invalid_client"})
        if form.get("scope") not in ("api.licensing", "api.installation", "api.push"):
            return CloudResponse(400, {"error": "invalid_scope"})
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = ident.lower()
        return CloudResponse(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer", "scope": form["scope"]})

    def organization_license(self, access_token, cloud_org_id, model):
        """GET /licenses/organization/{id} (LicensesController.OrganizationSync)."""
        installation_id = self._tokens.get(access_token)
        if installation_id is None:
            return CloudResponse(401)
        org = self._organization(cloud_org_id)
        if org is None:
            return CloudResponse(404, {"message": "Resource not found."})
        if model.get("licenseKey") != org["license_key"]:
            return CloudResponse(400, {"message": "Invalid license key."})
        valid = self._billing_sync_key_valid(org, model.get("billingSyncKey"))
        if valid is not True:
            return valid or CloudResponse(400, {"message": "Invalid Billing Sync Key"})
        # GetCloudOrganizationLicenseQuery.GetLicenseAsync
        if not self.installations.get(installation_id, {}).get("enabled"):
            return CloudResponse(400, {"message": "Invalid installation id"})
        if org["subscription"] is None:
            return CloudResponse(400, {"message": "No active subscription found."})
        if org["subscription"] == "canceled":
            return CloudResponse(400, {"message": PAYMENT_ISSUE})
        return CloudResponse(200, license_document(cloud_org_id, org, installation_id))

    def sponsorship_sync(self, access_token, model):
        """POST /organization/sponsorship/sync (OrganizationSponsorshipsController.Sync, contract 4.1)."""
        if self._tokens.get(access_token) is None:
            return CloudResponse(401)
        org = self._organization(model.get("sponsoringOrganizationCloudId"))
        valid = self._billing_sync_key_valid(org, model.get("billingSyncKey"))
        if valid is not True:
            return valid or CloudResponse(400, {"message": "Invalid Billing Sync Key"})
        return CloudResponse(200, {"sponsorshipsBatch": model.get("sponsorshipsBatch") or []})


# GetCloudOrganizationLicenseQuery for a canceled or incomplete subscription (server bbc1a315e2, April 2026).
PAYMENT_ISSUE = ("Unable to generate license due to a payment issue. Please update your billing information or contact "
                 "support for assistance.")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def license_token(claims):
    """The license's JWT (LicensingService.CreateOrganizationTokenAsync): claims as strings, DateTimes in the invariant
    culture (OrganizationLicenseClaimsFactory); the signature is opaque to the simulator."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(64))}"


def token_claims(token):
    """The claims of a license token, or None when it is not one."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (AttributeError, IndexError, ValueError):
        return None


def invariant_datetime(moment):
    """DateTime.ToString(CultureInfo.InvariantCulture): MM/dd/yyyy HH:mm:ss."""
    return moment.strftime("%m/%d/%Y %H:%M:%S")


def license_document(cloud_org_id, org, installation_id):
    """An OrganizationLicense as the cloud generates it for the calling installation.

    Expires carries the 60-day self-host grace period after the paid period (server
    src/Core/Billing/Licenses/Extensions/LicenseExtensions.cs, Constants.OrganizationSelfHostSubscriptionGracePeriodDays).
    """
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    period_end = org["period_end"]
    expires = period_end + datetime.timedelta(days=GRACE_PERIOD_DAYS)
    return {
        "licenseKey": org["license_key"],
        "installationId": installation_id,
        "id": str(cloud_org_id),
        "name": org["name"],
        "billingEmail": "billing@example.com",
        "businessName": None,
        "enabled": True,
        "plan": "Enterprise (Annually)",
        "planType": 20,
        "seats": org["seats"],
        "maxCollections": None,
        "usePolicies": True,
        "useSso": True,
        "useKeyConnector": True,
        "useScim": True,
        "useGroups": True,
        "useEvents": True,
        "useDirectory": True,
        "useTotp": True,
        "use2fa": True,
        "useApi": True,
        "useResetPassword": True,
        "maxStorageGb": 1,
        "selfHost": True,
        "usersGetPremium": True,
        "useCustomPermissions": True,
        "version": 15,
        "issued": now.isoformat().replace("+00:00", "Z"),
        "refresh": (now + datetime.timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "expires": expires.isoformat().replace("+00:00", "Z"),
        "expirationWithoutGracePeriod": period_end.isoformat().replace("+00:00", "Z"),
        "trial": False,
        "licenseType": 1,
        "hash": secrets.token_hex(32),
        "signature": secrets.token_urlsafe(64),
        "token": license_token({
            "LicenseType": "Organization", "Id": str(cloud_org_id), "Name": org["name"], "LicenseKey": org["license_key"],
            "InstallationId": installation_id, "Enabled": "True", "PlanType": "20", "Seats": "50", "SelfHost": "True",
            "Issued": invariant_datetime(now), "Expires": invariant_datetime(expires),
            "Refresh": invariant_datetime(now + datetime.timedelta(days=30)), "Trial": "False",
            "ExpirationWithoutGracePeriod": invariant_datetime(period_end)}),
    }


class Clouds:
    """URL -> cloud resolution, the way DNS would do it for the real hosts."""

    def __init__(self):
        self.regions = {"US": Cloud("US"), "EU": Cloud("EU")}

    def resolve(self, url):
        """Return (cloud, service) for a real cloud URL, or raise Unreachable."""
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = HOSTS.get(host)
        if target is None or parts.scheme != "https" or port != 443:
            raise Unreachable(host, port)
        return self.regions[target[0]], target[1]


def new_guid():
    return str(uuid.uuid4())

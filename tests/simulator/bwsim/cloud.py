"""The Bitwarden US and EU clouds, in-process: installations, cloud organizations, the licensing endpoints.

Self-hosted instances reach them by URL (contract 3.2): only the real cloud hosts resolve, anything else is
unreachable. Nothing here opens a socket.
"""

import datetime
import secrets
import threading
import urllib.parse
import uuid

HOSTS = {
    "identity.bitwarden.com": ("US", "identity"),
    "api.bitwarden.com": ("US", "api"),
    "identity.bitwarden.eu": ("EU", "identity"),
    "api.bitwarden.eu": ("EU", "api"),
}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}
GRACE_PERIOD_DAYS = 60
STATUS_NAMES = {200: "OK", 400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 500: "InternalServerError"}


class Unreachable(Exception):
    """DNS/TCP failure, as HttpClient would raise it."""

    def __init__(self, host, port):
        super().__init__(f"Name or service not known ({host}:{port})")
        self.host, self.port = host, port


class CloudResponse:
    def __init__(self, status, body=None):
        self.status = status
        self.body = body

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def reason(self):
        return REASONS.get(self.status, "")


class Cloud:
    """One region: its installations, its organizations, and the tokens its identity server issued."""

    def __init__(self, region):
        self.region = region
        self.installations = {}
        self.organizations = {}
        self._tokens = {}
        self._lock = threading.Lock()

    def add_installation(self, installation_id, key):
        self.installations[installation_id] = {"key": key, "enabled": True}

    def add_organization(self, org_id, license_key, billing_sync_key, name, subscription_days=365):
        self.organizations[org_id] = {"license_key": license_key, "billing_sync_key": billing_sync_key, "name": name,
                                      "subscription_days": subscription_days}

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
        org = self.organizations.get(str(cloud_org_id).lower())
        if org is None:
            return CloudResponse(404, {"message": "Resource not found."})
        if model.get("licenseKey") != org["license_key"]:
            return CloudResponse(400, {"message": "Invalid license key."})
        if model.get("billingSyncKey") != org["billing_sync_key"]:
            return CloudResponse(400, {"message": "Invalid Billing Sync Key"})
        if not self.installations.get(installation_id, {}).get("enabled"):
            return CloudResponse(400, {"message": "Invalid installation id"})
        return CloudResponse(200, license_document(cloud_org_id, org, installation_id))

    def sponsorship_sync(self, access_token, model):
        """POST /organization/sponsorship/sync (OrganizationSponsorshipsController.Sync, contract 4.1)."""
        if self._tokens.get(access_token) is None:
            return CloudResponse(401)
        org = self.organizations.get(str(model.get("sponsoringOrganizationCloudId")).lower())
        if org is None or model.get("billingSyncKey") != org["billing_sync_key"]:
            return CloudResponse(400, {"message": "Invalid Billing Sync Key"})
        return CloudResponse(200, {"sponsorshipsBatch": model.get("sponsorshipsBatch") or []})


def license_document(cloud_org_id, org, installation_id):
    """An OrganizationLicense as the cloud generates it for the calling installation.

    Expires carries the 60-day self-host grace period after the paid period (server
    src/Core/Billing/Licenses/Extensions/LicenseExtensions.cs, Constants.OrganizationSelfHostSubscriptionGracePeriodDays).
    """
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    period_end = now + datetime.timedelta(days=org.get("subscription_days", 365))
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
        "seats": 50,
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
        "token": None,
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

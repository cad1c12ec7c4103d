"""The self-hosted api container: organization connections, license sync, sponsorship sync status, info routes.

Status codes, bodies and messages follow the contract (sections 2-5); each check runs in the server's order.
"""

import calendar
import json
import re
import time
import uuid

from .cloud import token_claims
from .httpserver import Response, json_response
from .identity import dotnet_datetime, utc_now_json

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
CONNECTION_TYPES = {1: "CloudBillingSync", 2: "Scim"}
GUID_D_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# PlanType -> ProductTier (src/Core/Billing/Enums/PlanType.cs, GetProductTier) for the plans the simulated clouds sell.
PRODUCT_TIERS = {19: 3, 20: 3, 17: 2, 18: 2}
DATETIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?$")
GRACE_PERIOD_DAYS = 60  # Constants.OrganizationSelfHostSubscriptionGracePeriodDays
GENERIC_SYNC_ERROR = "An error has occurred. Check your internet connection and ensure the billing token is correct."


class ApiError(Exception):
    """Carries the response an exception filter would produce."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def envelope(message, validation_errors=None):
    return {"object": "error", "message": message, "validationErrors": validation_errors, "exceptionMessage": None,
            "exceptionStackTrace": None, "innerExceptionMessage": None}


def error(status, message, validation_errors=None):
    return ApiError(json_response(status, envelope(message, validation_errors)))


def bad_request(message):
    return error(400, message)


def not_found():
    return error(404, "Resource not found.")


def server_error():
    return error(500, "An unhandled server error has occurred.")


def model_state(errors):
    return error(400, "The model state is invalid.", errors)


def type_name(value):
    return CONNECTION_TYPES.get(value, str(value))


def route_guid(params, name):
    """Route/model binding of a Guid parameter (GuidConverter accepts the usual formats)."""
    value = params[name]
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise model_state({name: [f"The value '{value}' is not valid."]}) from exc


def route_connection_type(params):
    """Enum binding: a member name (any case) or a defined number; undefined numbers are rejected."""
    value = params["type"]
    for number, name in CONNECTION_TYPES.items():
        if value.lower() == name.lower() or (value.strip().isdigit() and int(value) == number):
            return number
    raise model_state({"type": [f"The value '{value}' is not valid."]})


def parse_dotnet_datetime(text):
    """System.Text.Json DateTime? -> the string it serializes back to (local time is UTC in the containers)."""
    match = DATETIME_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(text)
    date, clock, fraction, zone = match.groups()
    clock = clock or "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    stamp = time.strptime(f"{date}T{clock}", "%Y-%m-%dT%H:%M:%S")
    seconds = calendar.timegm(stamp)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    ns = seconds * 1_000_000_000 + int((fraction or "0").ljust(7, "0")) * 100
    return dotnet_datetime(ns, "" if zone is None else ("Z" if zone == "Z" else "+00:00"))


def normalized_datetime(text):
    """A DateTime read from JSON and written back by System.Text.Json (UTC stays 'Z')."""
    return None if text is None else parse_dotnet_datetime(text)


def claim_datetime(value):
    """A license claim's DateTime (MM/dd/yyyy HH:mm:ss, invariant culture) as System.Text.Json writes it back."""
    if not value:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.strptime(value, "%m/%d/%Y %H:%M:%S"))


def shift_days(text, days):
    """DateTime.AddDays on a serialized UTC DateTime."""
    stamp = parse_dotnet_datetime(text)
    zone = "Z" if stamp.endswith("Z") else ("+00:00" if stamp.endswith("+00:00") else "")
    base = stamp[:len(stamp) - len(zone)] if zone else stamp
    seconds = calendar.timegm(time.strptime(base.split(".")[0], "%Y-%m-%dT%H:%M:%S")) + days * 86400
    fraction = base.partition(".")[2]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ("." + fraction if fraction else "") + zone


class SelfHostedApi:
    """Handlers for /api/*; `instance` holds the data, this class the rules."""

    def __init__(self, instance):
        self.instance = instance

    # -- auth ------------------------------------------------------------------------------------------------
    def principal(self, request):
        auth = request.header("Authorization", "")
        if auth[:7].lower() != "bearer ":
            return None, False
        principal = self.instance.tokens.get(auth[7:].strip())
        if principal is None or principal.expires < time.time():
            return None, True
        return principal, True

    def application(self, request):
        """[Authorize("Application")]: 401 without a valid bearer token, 403 for other token types."""
        principal, presented = self.principal(request)
        if principal is None:
            challenge = 'Bearer error="invalid_token"' if presented else "Bearer"
            raise ApiError(Response(401, headers=[("WWW-Authenticate", challenge)]))
        if not principal.application:
            raise ApiError(Response(403))
        return principal

    @staticmethod
    def is_owner(principal, org_id):
        return principal is not None and org_id in principal.owner_orgs

    def has_permission(self, principal, org_id, conn_type):
        """Scim needs ManageScim (admins and owners); every other type needs an owner."""
        if conn_type == 2:
            return org_id in principal.owner_orgs or org_id in principal.admin_orgs
        return self.is_owner(principal, org_id)

    # -- bodies ----------------------------------------------------------------------------------------------
    @staticmethod
    def body_model(request):
        """[FromBody] OrganizationConnectionRequestModel with the ModelState filter in front."""
        content_type = request.header("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "text/json") and not content_type.endswith("+json"):
            raise ApiError(Response(415))
        if not request.body.strip():
            raise model_state({"": ["A non-empty request body is required.", "Body is empty."]})
        converr = "The JSON value could not be converted to Bit.Api.AdminConsole.Models.Request.Organizations.OrganizationConnectionRequestModel."
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise model_state({"$": [converr], "": ["Body is empty."]}) from exc
        if not isinstance(data, dict):
            raise model_state({"$": [converr], "": ["Body is empty."]})
        fields = {key.lower(): value for key, value in data.items()}
        model = {"type": 0, "organizationId": ZERO_GUID, "enabled": False, "config": None}
        errors = {}
        if "type" in fields:
            value = fields["type"]
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
                model["type"] = value
            else:
                errors["$.type"] = ["The JSON value could not be converted to Bit.Core.Enums.OrganizationConnectionType."]
        if "organizationid" in fields:
            value = fields["organizationid"]
            if isinstance(value, str) and GUID_D_RE.match(value):
                model["organizationId"] = value.lower()
            else:
                errors["$.organizationId"] = ["The JSON value could not be converted to System.Guid."]
        if "enabled" in fields:
            if isinstance(fields["enabled"], bool):
                model["enabled"] = fields["enabled"]
            else:
                errors["$.enabled"] = ["The JSON value could not be converted to System.Boolean."]
        model["config"] = fields.get("config")
        if errors:
            errors[""] = ["Body is empty."]
            raise model_state(errors)
        return model

    @staticmethod
    def typed_config(conn_type, config):
        """OrganizationConnectionRequestModel<T>: deserialize Config (case-insensitive) or fail as the server does."""
        if config is None:
            raise server_error()
        malformed = bad_request("Organization Connection configuration malformed")
        if not isinstance(config, dict):
            raise malformed
        fields = {key.lower(): value for key, value in config.items()}
        if conn_type == 2:
            enabled = fields.get("enabled", False)
            provider = fields.get("scimprovider")
            if not isinstance(enabled, bool) or not (provider is None or (isinstance(provider, int) and not isinstance(provider, bool))):
                raise malformed
            return {"Enabled": enabled, "ScimProvider": provider}
        key = fields.get("billingsynckey")
        cloud_id = fields.get("cloudorganizationid", ZERO_GUID)
        last = fields.get("lastlicensesync")
        if not (key is None or isinstance(key, str)) or not (isinstance(cloud_id, str) and GUID_D_RE.match(cloud_id)):
            raise malformed
        try:
            last = None if last is None else parse_dotnet_datetime(last)
        except ValueError as exc:
            raise malformed from exc
        return {"BillingSyncKey": key, "CloudOrganizationId": cloud_id.lower(), "LastLicenseSync": last}

    def validate_billing_sync(self, org_id, config):
        """ValidateBillingSyncConfig: the org's license file must exist and verify; it names the cloud org."""
        inst = self.instance
        try:
            with open(inst.paths.license_file(org_id), encoding="utf-8") as handle:
                license_doc = json.load(handle)
        except FileNotFoundError as exc:
            if inst.version < (2026, 6, 2):
                raise server_error() from exc
            raise bad_request("Cannot verify license file.") from exc
        except ValueError as exc:
            raise bad_request("Cannot verify license file.") from exc
        fields = {key.lower(): value for key, value in license_doc.items()} if isinstance(license_doc, dict) else {}
        if not fields.get("signature") or not isinstance(fields.get("id"), str) or not GUID_D_RE.match(fields["id"]):
            raise bad_request("Cannot verify license file.")
        config["CloudOrganizationId"] = fields["id"].lower()

    @staticmethod
    def connection_response(row):
        if row is None:
            return {"id": None, "type": 0, "organizationId": ZERO_GUID, "enabled": False, "config": None}
        return {"id": row["id"], "type": row["type"], "organizationId": row["organizationId"], "enabled": row["enabled"],
                "config": json.loads(row["config"]) if row["config"] is not None else None}

    # -- info routes -----------------------------------------------------------------------------------------
    def alive(self, _request, _params):
        return json_response(200, utc_now_json())

    def version(self, _request, _params):
        return json_response(200, self.instance.spec["version"])

    def config(self, _request, _params):
        inst = self.instance
        settings = inst.settings
        vault = settings["vault"]
        environment = {"vault": vault, "api": vault + "/api", "identity": vault + "/identity",
                       "notifications": vault + "/notifications", "sso": vault + "/sso"}
        if inst.version >= (2023, 8, 0):
            environment = {"cloudRegion": settings["cloudRegion"], **environment}
        return json_response(200, {
            "object": "config",
            "version": inst.spec["version"],
            "gitHash": inst.git_hash,
            "server": None,
            "environment": environment,
            "featureStates": {},
            "push": {"pushTechnology": 1 if settings["pushRelayEnabled"] else 0, "vapidPublicKey": None},
            "communication": None,
            "settings": {"disableUserRegistration": settings["disableUserRegistration"]},
        })

    def organizations(self, request, _params):
        principal = self.application(request)
        inst = self.instance
        user = inst.users[principal.subject]
        org = {
            "object": "profileOrganization", "id": inst.organization_id, "name": inst.organization_name,
            "usePolicies": True, "useSso": True, "useKeyConnector": True, "useScim": True, "useGroups": True,
            "useDirectory": True, "useEvents": True, "useTotp": True, "use2fa": True, "useApi": True,
            "useResetPassword": True, "useSecretsManager": False, "usePasswordManager": True, "useCustomPermissions": True,
            "selfHost": True, "usersGetPremium": True, "seats": 50, "maxCollections": None, "maxStorageGb": 1,
            "key": "4.bwsimOrgKey", "status": 2, "type": user["type"], "enabled": True, "ssoBound": False,
            "identifier": None, "permissions": None, "resetPasswordEnrolled": False, "userId": principal.subject,
            "hasPublicAndPrivateKeys": True, "providerId": None, "providerName": None, "providerType": None,
            "familySponsorshipFriendlyName": None, "familySponsorshipAvailable": True, "productTierType": 3,
            "keyConnectorEnabled": False, "keyConnectorUrl": None, "familySponsorshipLastSyncDate": None,
            "familySponsorshipValidUntil": None, "familySponsorshipToDelete": None, "accessSecretsManager": False,
            "limitCollectionCreation": False, "limitCollectionDeletion": False, "allowAdminAccessToAllCollectionItems": True,
            "userIsManagedByOrganization": False, "ssoEnabled": False, "ssoMemberDecryptionType": None,
        }
        return json_response(200, {"object": "list", "data": [org], "continuationToken": None})

    # -- subscription (self-hosted: from the license file) ----------------------------------------------------
    def subscription(self, request, params):
        """OrganizationsController.GetSubscription, self-hosted branch (server src/Api/Billing/Controllers/
        OrganizationsController.cs and OrganizationSubscriptionResponseModel in src/Api/AdminConsole/Models/Response/
        Organizations/OrganizationResponseModel.cs @ v2026.8.0; the license branch since v2023.5.0, the null-license
        500 since v2025.12.1)."""
        principal = self.application(request)
        inst = self.instance
        org_id = route_guid(params, "id")
        if not self.is_owner(principal, org_id) or org_id != inst.organization_id:
            raise not_found()
        with inst.lock:
            expiration = inst.organization_expiration
            plan = dict(inst.organization_plan)
        # OrganizationResponseModel: the organization row's Seats, PlanType and PlanResponseModel(organization).
        body = {"object": "organizationSubscription", "id": org_id, "name": inst.organization_name,
                "planType": plan["PlanType"], "plan": {"object": "plan", "type": plan["PlanType"],
                                                       "productTier": PRODUCT_TIERS.get(plan["PlanType"], 0), "name": plan["Plan"]},
                "seats": plan["Seats"], "maxStorageGb": 1, "storageName": None, "storageGb": 0, "subscription": None,
                "upcomingInvoice": None, "customerDiscount": None, "expiration": normalized_datetime(expiration)}
        if inst.version < (2023, 5, 0):
            return json_response(200, body)  # before the license branch: the organization row's ExpirationDate only
        try:
            license_doc = inst.read_license(org_id)
        except ValueError as exc:
            raise server_error() from exc
        body["expirationWithoutGracePeriod"] = None
        if license_doc is None:
            if inst.version >= (2025, 12, 1):
                raise server_error()  # GetClaimsPrincipalFromLicense(null) dereferences the missing license
            return json_response(200, body)
        claims = token_claims(license_doc.get("Token")) if inst.version >= (2025, 12, 1) else None
        if claims is not None:
            # Since v2025.12.1 a license with a Token (JWT, cloud PM-27731) is shown from its claims, never from the
            # file's editable fields (GetClaimsPrincipalFromLicense; claims are invariant-culture DateTime strings,
            # read back with an unspecified kind).
            expires = claim_datetime(claims.get("Expires"))
            without_grace = claim_datetime(claims.get("ExpirationWithoutGracePeriod"))
        else:
            # A license without a Token: the file's Expires / ExpirationWithoutGracePeriod (case-sensitive).
            expires = license_doc.get("Expires")
            without_grace = license_doc.get("ExpirationWithoutGracePeriod")
            if without_grace is None and expires is not None:
                without_grace = expires if license_doc.get("Trial") else shift_days(expires, -GRACE_PERIOD_DAYS)
        body["expiration"] = normalized_datetime(expires)
        body["expirationWithoutGracePeriod"] = normalized_datetime(without_grace)
        return json_response(200, body)

    # -- organization connections ----------------------------------------------------------------------------
    def connections_enabled(self, request, _params):
        self.application(request)
        settings = self.instance.settings
        return json_response(200, settings["selfHosted"] and settings["enableCloudCommunication"])

    def create_connection(self, request, _params):
        principal = self.application(request)
        model = self.body_model(request)
        inst = self.instance
        conn_type, org_id = model["type"], model["organizationId"]
        if not self.has_permission(principal, org_id, conn_type):
            raise bad_request(f"You do not have permission to create a connection of type {type_name(conn_type)}.")
        with inst.lock:
            if inst.find_connection(org_id, conn_type) is not None:
                raise bad_request(f"The requested organization already has a connection of type {type_name(conn_type)}. "
                                  "Only one of each connection type may exist per organization.")
        config = self.checked_config(org_id, conn_type, model["config"])
        row = inst.store_connection(None, conn_type, org_id, model["enabled"], config)
        return json_response(200, self.connection_response(row))

    def checked_config(self, org_id, conn_type, raw_config):
        """The last checks create and update share, in the server's order: type, config shape, license."""
        if conn_type not in CONNECTION_TYPES:
            raise bad_request(f"Unknown Organization connection Type: {type_name(conn_type)}")
        config = self.typed_config(conn_type, raw_config)
        if conn_type == 1:
            self.validate_billing_sync(org_id, config)
        return config

    def update_connection(self, request, params):
        principal = self.application(request)
        connection_id = route_guid(params, "organizationConnectionId")
        model = self.body_model(request)
        inst = self.instance
        existing = inst.connections.get(connection_id)
        if existing is None or existing["organizationId"] != model["organizationId"]:
            raise not_found()
        if inst.version >= (2026, 6, 2):
            allowed = self.has_permission(principal, existing["organizationId"], existing["type"])
        else:
            allowed = self.has_permission(principal, model["organizationId"], model["type"])
        if not allowed:
            raise bad_request("You do not have permission to update this connection.")
        conn_type = model["type"]
        if inst.version >= (2026, 6, 2) and conn_type != existing["type"]:
            raise bad_request("The connection type cannot be changed.")
        other = inst.find_connection(model["organizationId"], conn_type)
        if other is not None and other["id"] != connection_id:
            raise bad_request(f"The requested organization already has a connection of type {type_name(conn_type)}. "
                              "Only one of each connection type may exist per organization.")
        config = self.checked_config(model["organizationId"], conn_type, model["config"])
        row = inst.store_connection(connection_id, conn_type, model["organizationId"], model["enabled"], config)
        return json_response(200, self.connection_response(row))

    def get_connection(self, request, params):
        principal = self.application(request)
        org_id = route_guid(params, "organizationId")
        conn_type = route_connection_type(params)
        if not self.has_permission(principal, org_id, conn_type):
            raise bad_request(f"You do not have permission to retrieve a connection of type {type_name(conn_type)}.")
        return json_response(200, self.connection_response(self.instance.find_connection(org_id, conn_type)))

    def delete_connection(self, request, params):
        principal = self.application(request)
        connection_id = route_guid(params, "organizationConnectionId")
        inst = self.instance
        existing = inst.connections.get(connection_id)
        if existing is None:
            raise not_found()
        if not self.has_permission(principal, existing["organizationId"], existing["type"]):
            raise bad_request(f"You do not have permission to remove this connection of type {type_name(existing['type'])}.")
        inst.delete_connection(connection_id)
        return Response(200)

    # -- license sync ----------------------------------------------------------------------------------------
    def sync_license(self, request, params):
        principal = self.application(request)
        inst = self.instance
        try:
            org_id = str(uuid.UUID(params["id"]))
        except ValueError as exc:
            raise server_error() from exc
        if org_id != inst.organization_id or not self.is_owner(principal, org_id):
            raise not_found()
        connection = inst.find_connection(org_id, 1)
        if connection is None:
            raise not_found()
        settings = inst.settings
        if not settings["enableCloudCommunication"]:
            raise bad_request("Cloud communication is disabled in global settings")
        if not connection["enabled"]:
            raise bad_request(f"Connection disabled for organization {org_id}")
        if not connection["config"] or not connection["config"].strip():
            raise bad_request(f"No saved Connection config for organization {org_id}")
        try:
            config = json.loads(connection["config"])
        except ValueError as exc:
            raise bad_request(f"Error parsing Connection config for organization {org_id}") from exc
        if not (config.get("BillingSyncKey") or "").strip():
            raise bad_request("Failed to get Billing Sync Key")
        license_doc = inst.fetch_cloud_license(config["CloudOrganizationId"], config["BillingSyncKey"], request.request_id)
        if license_doc is None:
            raise bad_request(GENERIC_SYNC_ERROR)
        inst.install_license(org_id, license_doc)
        inst.touch_last_license_sync(connection["id"])
        return Response(200)

    def sponsorship_sync_status(self, request, params):
        """No [Authorize]: a bearer token is still read; anything but an owner gets 404."""
        org_id = route_guid(params, "sponsoringOrgId")
        principal = self.principal(request)[0]
        if not self.is_owner(principal, org_id):
            raise not_found()
        return json_response(200, {"object": "syncStatus", "lastSyncDate": self.instance.sponsorship_last_sync})

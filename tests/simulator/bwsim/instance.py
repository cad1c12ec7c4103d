"""One simulated installation: its data, its lifecycle (settings read only at start), its front door (nginx)."""

import copy
import json
import os
import secrets
import threading
import time
import urllib.parse
import uuid

from . import apilog, envfile, layout
from .cloud import CloudResponse, Unreachable, license_document
from .fleet import normalize_faults, parse_version
from .httpserver import Listener, Response, json_response, nginx_page, text_response
from .identity import Identity, dotnet_datetime
from .routing import Route, Router
from .selfhosted import ApiError, SelfHostedApi
from .settings import StartupError, effective_settings, public_settings

WRITE_METHODS = ("POST", "PUT", "DELETE")
UNREACHABLE_TRACE = " ---> System.Net.Sockets.SocketException (0xFFFDFFFE): Name or service not known"


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.values = {"requests": 0, "by_route": {}, "cloud_calls": 0, "token_requests": 0, "writes": 0, "devices_registered": 0}

    def bump(self, name, amount=1):
        with self._lock:
            self.values[name] += amount

    def request(self, route_key, is_write):
        with self._lock:
            self.values["requests"] += 1
            self.values["by_route"][route_key] = self.values["by_route"].get(route_key, 0) + 1
            if is_write:
                self.values["writes"] += 1

    def snapshot(self):
        with self._lock:
            return copy.deepcopy(self.values)


def uri_string(url):
    """System.Uri.ToString() of a base address: lower-case scheme and host, '/' for an empty path."""
    parts = urllib.parse.urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise ValueError(url)
    return urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


class Instance:  # pylint: disable=too-many-instance-attributes
    def __init__(self, sim, spec):
        self.sim = sim
        self.spec = spec
        self.name = spec["name"]
        self.version = parse_version(spec["version"])
        self.faults = spec["faults"]
        self.lock = threading.RLock()
        self.op_lock = threading.Lock()
        self.counters = Counters()
        self.listener = Listener(sim.acceptor, self.handle, sim.ssl_context if spec["tls"] else None)
        self.port = self.listener.port
        self.url = f"{'https' if spec['tls'] else 'http'}://127.0.0.1:{self.port}"
        self.git_hash = secrets.token_hex(4)

        self.organization_id = str(uuid.uuid4())
        self.organization_name = f"{self.name} Org"
        self.cloud_organization_id = str(uuid.uuid4())
        self.installation_id = str(uuid.uuid4())
        self.installation_key = envfile.random_string(20)
        self.license_key = envfile.random_string(30)
        self.owner_id, self.admin_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.users = {
            self.owner_id: {"type": 0, "secret": envfile.random_string(30), "email": f"owner@{self.name}.example"},
            self.admin_id: {"type": 1, "secret": envfile.random_string(30), "email": f"admin@{self.name}.example"},
        }
        self.org_api_key = envfile.random_string(30)
        self.inventory_token = envfile.random_string(30)
        self.cloud = sim.clouds.regions[spec["region"]]
        self.cloud.add_installation(self.installation_id, self.installation_key)
        self.cloud.add_organization(self.cloud_organization_id, self.license_key, self.inventory_token, self.organization_name)
        self._apply_cloud_faults()

        org_license = license_document(self.cloud_organization_id, self.cloud.organizations[self.cloud_organization_id],
                                       self.installation_id) if spec["license"] else None
        env_values = envfile.setup_values(self.url, spec["env_region"], self.installation_id, self.installation_key,
                                          spec["push_notifications"])
        self.paths = layout.lay_out(os.path.join(sim.directory, self.name), name=self.name, url=self.url, control_url=sim.control_url,
                                    spec=spec, env_values=env_values, org_id=self.organization_id, license_doc=org_license)
        self.api_log = apilog.ApiLog(self.paths.bwdata)
        self.connection_id = None
        self.request_counter = 0
        self.kestrel_id = apilog.new_connection_id()

        self.state = "down"
        self.settings = None
        self.start_error = None
        self.generation = 0
        self.restarts = 0
        self.connections = {}
        self.devices = []
        self.tokens = {}
        self.sponsorship_last_sync = None
        self.api = SelfHostedApi(self)
        self.identity = Identity(self)
        self.router = Router([
            Route("GET", "/alive", self._nginx_alive),
            Route("GET", "/api/alive", self.api.alive),
            Route("GET", "/api/now", self.api.alive),
            Route("GET", "/api/version", self.api.version),
            Route("GET", "/api/config", self.api.config),
            Route("GET", "/api/organizations", self.api.organizations),
            Route("GET", "/api/organizations/connections/enabled", self.api.connections_enabled),
            Route("POST", "/api/organizations/connections", self.api.create_connection),
            Route("PUT", "/api/organizations/connections/{organizationConnectionId}", self.api.update_connection),
            Route("DELETE", "/api/organizations/connections/{organizationConnectionId}", self.api.delete_connection),
            Route("POST", "/api/organizations/connections/{organizationConnectionId}/delete", self.api.delete_connection,
                  below_version=(2026, 6, 2)),
            Route("GET", "/api/organizations/connections/{organizationId}/{type}", self.api.get_connection),
            Route("POST", "/api/organizations/licenses/self-hosted/{id}/sync", self.api.sync_license, min_version=(2023, 2, 0)),
            Route("GET", "/api/organization/sponsorship/{sponsoringOrgId}/sync-status", self.api.sponsorship_sync_status),
            Route("POST", "/identity/connect/token", self.identity.token),
            Route("GET", "/identity/alive", self.identity.alive),
            Route("GET", "/identity/now", self.identity.alive),
            Route("GET", "/identity/.well-known/openid-configuration", self.identity.discovery),
        ])

    # -- faults ------------------------------------------------------------------------------------------------
    def set_faults(self, faults):
        normalized = normalize_faults(faults)
        with self.lock:
            self.faults = normalized
            self._apply_cloud_faults()

    def rotate_billing_sync_token(self):
        """An owner generated a new billing sync token in the cloud web vault: the old one stops working there."""
        with self.lock:
            self.inventory_token = envfile.random_string(30)
            self._apply_cloud_faults()
            return self.inventory_token

    def _apply_cloud_faults(self):
        """wrong_billing_sync_token: the cloud holds another token than the inventory's."""
        key = self.inventory_token
        if self.faults["wrong_billing_sync_token"]:
            key = "rotated-" + self.inventory_token[::-1]
        self.cloud.organizations[self.cloud_organization_id]["billing_sync_key"] = key

    def _take_http_fault(self, request):
        with self.lock:
            for rule in self.faults["http"]:
                if rule["times"] <= 0:
                    continue
                if rule["method"] and rule["method"] != request.method:
                    continue
                if not request.path.lower().startswith(rule["path_prefix"].lower()):
                    continue
                rule["times"] -= 1
                return rule
        return None

    @staticmethod
    def _fault_response(rule):
        status = rule["status"]
        headers = [("Retry-After", str(rule["retry_after"]))] if rule.get("retry_after") is not None else []
        if status == 429:
            response = text_response(429, "API calls quota exceeded! maximum admitted 100 per 1m.")
        elif status in (502, 503, 504):
            response = nginx_page(status, {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[status])
        elif status >= 500:
            response = json_response(status, {"object": "error", "message": "An unhandled server error has occurred.", "validationErrors": None,
                                              "exceptionMessage": None, "exceptionStackTrace": None, "innerExceptionMessage": None})
        else:
            response = Response(status)
        response.headers.extend(headers)
        return response

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def read_environment(self):
        """What `docker compose up` passes to the api/identity containers: global.env, uid.env, global.override.env."""
        env = {}
        for path in (self.paths.global_env, self.paths.uid_env, self.paths.env_file):
            try:
                with open(path, "rb") as handle:  # compose reads bytes: CR, BOM and non-UTF-8 bytes reach the parser
                    data = handle.read()
            except FileNotFoundError as exc:
                raise envfile.EnvFileError(f"env file {path} not found: stat {path}: no such file or directory") from exc
            try:
                env.update(envfile.load_compose_env(data))
            except envfile.EnvFileError as exc:
                raise envfile.EnvFileError(f"failed to read {path}: {exc}") from exc
        return env

    def boot(self, env, warmup):
        """Containers created: nginx answers at once, the apps after `warmup` unless their start-up throws."""
        with self.lock:
            self.generation += 1
            generation = self.generation
            try:
                self.settings = effective_settings(env)
                self.start_error = None
            except StartupError as exc:
                self.settings = None
                self.start_error = str(exc)
            self.state = "down" if self.start_error else ("starting" if warmup > 0 else "up")
        if self.start_error:
            self.api_log.write("FTL", "Host terminated unexpectedly", self._request_id(), 0, f"System.InvalidOperationException: {self.start_error}")
            self.sim.log(f"{self.name}: start-up failed: {self.start_error}")
        self.listener.start()
        if self.state == "starting":
            timer = threading.Timer(warmup, self._warm, args=(generation,))
            timer.daemon = True
            timer.start()

    def _warm(self, generation):
        with self.lock:
            if self.generation == generation and self.state == "starting":
                self.state = "up"

    def go_down(self):
        with self.lock:
            self.generation += 1
            self.state = "down"
        self.listener.stop()

    def run_script_command(self, command, user):
        """The effect of `bitwarden.sh <command>`; returns (output, exit code) once the containers are created."""
        with self.op_lock:
            self.sim.log(f"{self.name}: bitwarden.sh {command} by {user}")
            if command in ("start", "restart", "update"):
                return self._restart(command)
            if command == "stop":
                self.go_down()
                return "", 0
            if command in ("rebuild", "updateconf"):
                self.go_down()
                self._rebuild_env()
                return "", 0
            return "", 0

    def _rebuild_env(self):
        with open(self.paths.env_file, encoding="utf-8") as handle:
            text = handle.read()
        with open(self.paths.env_file, "w", encoding="utf-8", newline="") as handle:
            handle.write(envfile.rebuild(text, self.url, self.spec["push_notifications"]))
        os.chmod(self.paths.env_file, 0o600)

    def _restart(self, command):
        with self.lock:
            self.restarts += 1
            fault = self.faults["restart"]
        self.go_down()
        if command == "update":
            self._rebuild_env()
        time.sleep(self.spec["restart_delay"])
        if fault == "fail":
            return ("Error response from daemon: Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io on 127.0.0.53:53: "
                    "server misbehaving\n"), 1
        if fault == "never_returns":
            return "", 0
        try:
            env = self.read_environment()
        except envfile.EnvFileError as exc:
            return f"{exc}\n", 1
        self.boot(env, self.spec["warmup"])
        return (f"Bitwarden is up and running!\n===================================================\n\nvisit {self.url}\n"
                "to update, run `./bitwarden.sh updateself` and then `./bitwarden.sh update`\n\n"), 0

    # -- data --------------------------------------------------------------------------------------------------
    def register_device(self, user_id, identifier):
        with self.lock:
            if (user_id, identifier) in {(d["user_id"], d["identifier"]) for d in self.devices}:
                return
            self.devices.append({"user_id": user_id, "identifier": identifier})
        self.counters.bump("devices_registered")

    def find_connection(self, org_id, conn_type):
        with self.lock:
            for row in self.connections.values():
                if row["organizationId"] == org_id and row["type"] == conn_type:
                    return row
        return None

    def store_connection(self, connection_id, conn_type, org_id, enabled, config):
        """Insert or replace the whole row; the config is stored as PascalCase JSON like JsonSerializer.Serialize."""
        with self.lock:
            row = {"id": connection_id or str(uuid.uuid4()), "type": conn_type, "organizationId": org_id, "enabled": enabled,
                   "config": json.dumps(config, separators=(",", ":"))}
            self.connections[row["id"]] = row
            return dict(row)

    def delete_connection(self, connection_id):
        with self.lock:
            self.connections.pop(connection_id, None)

    def touch_last_license_sync(self, connection_id):
        with self.lock:
            row = self.connections[connection_id]
            config = json.loads(row["config"])
            config["LastLicenseSync"] = dotnet_datetime(time.time_ns(), "+00:00")
            row["config"] = json.dumps(config, separators=(",", ":"))

    def install_license(self, org_id, license_doc):
        """UpdateOrganizationLicenseCommand writes the new license file (JsonSerializer: PascalCase)."""
        pascal = {key[0].upper() + key[1:]: value for key, value in license_doc.items()}
        with open(self.paths.license_file(org_id), "w", encoding="utf-8") as handle:
            json.dump(pascal, handle, indent=2)

    def fetch_cloud_license(self, cloud_org_id, billing_sync_key, request_id):
        """GetSelfHostedOrganizationLicenseQuery via BaseIdentityClientService; failures only reach the api log."""
        settings = self.settings
        client_id = f"installation.{settings['installationId']}"
        try:
            identity_base, api_base = uri_string(settings["identityUri"]), uri_string(settings["apiUri"])
        except ValueError as exc:
            raise ApiError(json_response(500, {"object": "error", "message": "An unhandled server error has occurred.", "validationErrors": None,
                                               "exceptionMessage": None, "exceptionStackTrace": None, "innerExceptionMessage": None})) from exc
        token_url = identity_base + "connect/token"
        license_url = api_base + f"licenses/organization/{cloud_org_id}"
        log = self.api_log
        self.counters.bump("cloud_calls")
        response = None
        try:
            cloud, service = self._resolve(token_url)
            if service == "identity" and urllib.parse.urlsplit(token_url).path == "/connect/token":
                response = cloud.token({"grant_type": "client_credentials", "scope": "api.licensing", "client_id": client_id,
                                        "client_secret": settings["installationKey"]})
            else:
                response = CloudResponse(404)
        except Unreachable as exc:
            log.error("Unable to authenticate with identity server.", request_id, apilog.EVENT_AUTH_FAILED,
                      f"System.Net.Http.HttpRequestException: {exc}\n{UNREACHABLE_TRACE}")
        if response is None:
            log.error(f"Empty token response from {identity_base} for client {client_id}", request_id)
        elif response.status != 200:
            log.error(f"Unsuccessful token response from {identity_base} for client {client_id} with status "
                      f"{response.status_name}-{response.reason}", request_id)
        if response is None or response.status != 200:
            log.error(f"Unable to send GET request to {license_url} because an access token was unable to be obtained", request_id)
            return None
        token = response.body["access_token"]
        self.counters.bump("cloud_calls")
        try:
            cloud, service = self._resolve(license_url)
            if service == "api" and urllib.parse.urlsplit(license_url).path.startswith("/licenses/organization/"):
                result = cloud.organization_license(token, cloud_org_id, {"licenseKey": self.license_key, "billingSyncKey": billing_sync_key})
            else:
                result = CloudResponse(404)
        except Unreachable as exc:
            log.error(f"Failed to send to {license_url}.", request_id, apilog.EVENT_SEND_FAILED,
                      f"System.Net.Http.HttpRequestException: {exc}\n{UNREACHABLE_TRACE}")
            return None
        if result.status == 200:
            return result.body
        if result.body is None:
            log.error(f"Failed to send to {license_url}.", request_id, apilog.EVENT_SEND_FAILED,
                      "System.Text.Json.JsonException: The input does not contain any JSON tokens. Expected the input to start with a valid JSON "
                      "token, while reading the response body.")
            return None
        if result.body.get("message") == "Invalid license key." and self.spec["error_delay"]:
            time.sleep(self.spec["error_delay"])
        log.error(f"Request to {license_url} is unsuccessful with status of {result.status_name}-{result.reason}: "
                  f"{result.body.get('message') or 'Unknown error'}\n", request_id)
        return None

    def _resolve(self, url):
        if self.faults["cloud_unreachable"]:
            parts = urllib.parse.urlsplit(url)
            raise Unreachable(parts.hostname, parts.port or 443)
        return self.sim.clouds.resolve(url)

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _request_id(self):
        with self.lock:
            self.request_counter += 1
            return f"{self.kestrel_id}:{self.request_counter:08X}"

    @staticmethod
    def _nginx_alive(_request, _params):
        return text_response(200, "alive")

    def handle(self, request):
        request.request_id = self._request_id()
        route, params = self.router.resolve(request.method, request.path, self.version)
        template = route.template if route else ("(method not allowed)" if params == "405" else "(unmatched)")
        is_api = request.path.lower().startswith("/api/")
        self.counters.request(f"{request.method} {template}", is_api and request.method in WRITE_METHODS)
        rule = self._take_http_fault(request)
        if rule is not None:
            return self._fault_response(rule)
        lowered = request.path.lower()
        if route is not None and route.template == "/alive":
            return route.handler(request, params)
        if lowered.startswith(("/api/", "/identity/")) or lowered in ("/api", "/identity"):
            with self.lock:
                ready = self.state == "up"
            if not ready:
                return nginx_page(502, "Bad Gateway")
            if route is None:
                return Response(405 if params == "405" else 404)
            try:
                return route.handler(request, params)
            except ApiError as exc:
                return exc.response
        if lowered in ("/", "/index.html"):
            return text_response(200, "<!doctype html><html><head><title>Bitwarden Web vault</title></head><body></body></html>", "text/html")
        return nginx_page(404, "Not Found")

    # -- control views -------------------------------------------------------------------------------------------
    def summary(self):
        with self.lock:
            settings = self.settings or {}
            return {"name": self.name, "url": self.url, "port": self.port, "state": self.state, "version": self.spec["version"],
                    "region": self.spec["region"], "env_region": self.spec["env_region"], "tls": self.spec["tls"],
                    "cloud_communication": bool(settings.get("enableCloudCommunication")), "restarts": self.restarts}

    def credentials(self):
        return {
            "owner": {"client_id": f"user.{self.owner_id}", "client_secret": self.users[self.owner_id]["secret"]},
            "admin": {"client_id": f"user.{self.admin_id}", "client_secret": self.users[self.admin_id]["secret"]},
            "organization": {"client_id": f"organization.{self.organization_id}", "client_secret": self.org_api_key},
        }

    def full_state(self):
        with self.lock:
            connection = self.find_connection(self.organization_id, 1)
            state = self.summary()
            state.update({
                "install_dir": self.paths.root,
                "settings": public_settings(self.settings) if self.settings else None,
                "start_error": self.start_error,
                "organization_id": self.organization_id,
                "cloud_organization_id": self.cloud_organization_id,
                "installation_id": self.installation_id,
                "credentials": self.credentials(),
                "billing_sync_token": self.cloud.organizations[self.cloud_organization_id]["billing_sync_key"],
                "inventory_billing_sync_token": self.inventory_token,
                "connection": self.api.connection_response(connection) if connection else None,
                "devices": [d["identifier"] for d in self.devices],
                "counters": self.counters.snapshot(),
                "faults": copy.deepcopy(self.faults),
            })
            return state

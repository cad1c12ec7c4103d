"""One simulated installation: its data, its lifecycle (settings read only at start), its front door (nginx)."""

import copy
import datetime
import json
import os
import random
import secrets
import threading
import time
import urllib.parse
import uuid

from . import apilog, envfile, layout, pause
from .docker import ComposeProject
from .cloud import CloudResponse, Unreachable, license_document
from .fleet import normalize_faults, parse_version
from .httpserver import Listener, Response, json_response, nginx_page, text_response
from .identity import Identity, dotnet_datetime
from .routing import Route, Router
from .selfhosted import ApiError, SelfHostedApi
from .settings import StartupError, effective_settings, public_settings

WRITE_METHODS = ("POST", "PUT", "DELETE")
SPONSORSHIP_JOB = "SelfHostedSponsorshipSyncJob"
DAY = 24 * 3600
UNREACHABLE_TRACE = " ---> System.Net.Sockets.SocketException (0xFFFDFFFE): Name or service not known"
# `cloud_drop`: a firewall drops the packets. The server's HttpClient keeps .NET's default Timeout of 100 s
# (services.AddHttpClient(), contract 11); nginx in front of the api gives up after its proxy_read_timeout of 90 s
# (util/Nginx/proxy.conf, self-host bitwarden-lite/nginx/proxy.conf) and answers 504, while the api goes on until its
# own timeout and logs it. Real durations: this fault has no time-scale knob (one test pays the 100 s).
HTTPCLIENT_TIMEOUT = 100
NGINX_PROXY_READ_TIMEOUT = 90
HTTPCLIENT_TIMEOUT_TRACE = (
    "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the configured HttpClient.Timeout "
    "of 100 seconds elapsing.\n ---> System.TimeoutException: A task was canceled.\n ---> "
    "System.Threading.Tasks.TaskCanceledException: A task was canceled.\n"
    "   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, HttpRequestMessage initialRequest, "
    "Boolean async, CancellationToken cancellationToken)\n   --- End of inner exception stack trace ---\n"
    "   --- End of inner exception stack trace ---\n"
    "   at System.Net.Http.HttpClient.HandleFailure(Exception e, Boolean telemetryStarted, HttpResponseMessage response, "
    "CancellationTokenSource cts, CancellationToken cancellationToken, CancellationTokenSource pendingRequestsCts)\n"
    "   at Bit.Core.Services.BaseIdentityClientService.HandleTokenStateAsync()")
SPONSORSHIP_TRACE = ("   at Bit.Core.OrganizationFeatures.OrganizationSponsorships.FamiliesForEnterprise.SelfHosted."
                     "SelfHostedSyncSponsorshipsCommand.SyncOrganization(Guid organizationId, Guid cloudOrganizationId, "
                     "OrganizationConnection billingSyncConnection)\n"
                     "   at Bit.Api.Jobs.SelfHostedSponsorshipSyncJob.ExecuteJobAsync(IJobExecutionContext context)")


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.values = {"requests": 0, "by_route": {}, "cloud_calls": 0, "cloud_rate_limited": 0, "token_requests": 0, "writes": 0,
                           "devices_registered": 0}

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


# run.sh's sequences (contract §7), for SimClient.bitwarden_sh: what the script would run, without the script
RUN_SH = {
    "start": ("down", "pull", "letsencrypt", "up", "printenv"),
    "restart": ("down", "pull", "letsencrypt", "up", "printenv"),
    "stop": ("down",),
    "rebuild": ("down", "update"),
    "updateconf": ("down", "pull-setup", "update"),
    "update": ("down", "pull-setup", "update", "pull", "letsencrypt", "up", "printenv"),
}
PRINTENV = ("Bitwarden is up and running!\n===================================================\n\nvisit {url}\n"
            "to update, run `./bitwarden.sh updateself` and then `./bitwarden.sh update`\n\n")
NO_COMPOSE_AT_ALL = "Error: Neither 'docker compose' nor 'docker-compose' commands were found. Please install Docker Compose.\n"
UP_FAILED = ("Error response from daemon: driver failed programming external connectivity on endpoint bitwarden-nginx: "
             "Bind for 0.0.0.0:443 failed: port is already allocated\n")


class Instance(ComposeProject):  # pylint: disable=too-many-instance-attributes,too-many-public-methods
    container_prefix = "bitwarden-"
    deployment = "standard"

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
        # The public address the instance's cloud calls leave from (the cloud's rate limits count per client IP).
        self.egress = spec["egress"] or self.name
        self.cloud.add_installation(self.installation_id, self.installation_key)
        self.cloud.add_organization(self.cloud_organization_id, self.license_key, self.inventory_token, self.organization_name,
                                    spec["subscription_days"])
        self._apply_cloud_faults()

        # The organization row was created from a license; its ExpirationDate stays even if the file goes.
        first_license = pascal_case(license_document(self.cloud_organization_id, self.cloud.organizations[self.cloud_organization_id],
                                                     self.installation_id))
        self.organization_expiration = first_license["Expires"]
        self.organization_plan = {key: first_license[key] for key in ("Seats", "Plan", "PlanType")}
        org_license = first_license if spec["license"] else None
        self.host_bin = os.path.join(sim.directory, "hosts", self.name, "bin")
        self.docker_command = layout.lay_out_host_bin(self.host_bin, sim.docker_path, self.faults["compose_v1"])
        self.paths = self.lay_out(org_license)
        self.project_dir = self.paths.docker_dir
        self.host_root = self.paths.root
        self.containers = False
        self.started_env = None
        self.api_log = apilog.ApiLog(self.paths.api_log_root, self.version)
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
        if spec["preconfigured"]:
            # An owner already did the four steps by hand: token saved, license synced once.
            self.store_connection(None, 1, self.organization_id, True, {
                "BillingSyncKey": self.inventory_token, "CloudOrganizationId": self.cloud_organization_id,
                "LastLicenseSync": dotnet_datetime(time.time_ns() - spec["synced_hours_ago"] * 3600 * 10 ** 9, "+00:00")})
        self.sponsorships = spec["sponsorships"]
        self.sponsorship_job_due = None  # epoch seconds of the next scheduled run; None: not registered
        self.api = SelfHostedApi(self)
        self.identity = Identity(self)
        self.router = Router([
            Route("GET", "/alive", self._nginx_alive),
            Route("GET", "/api/alive", self.api.alive),
            Route("GET", "/api/now", self.api.alive),
            Route("GET", "/api/version", self.api.version),
            Route("GET", "/api/config", self.api.config, min_version=(2022, 10, 0)),
            Route("GET", "/api/organizations", self.api.organizations),
            Route("GET", "/api/organizations/{id}/subscription", self.api.subscription),
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

    def lay_out(self, org_license):
        """Create (or recreate) the install dir: bitwarden.sh beside bwdata, as Setup leaves it."""
        env_values = envfile.setup_values(self.url, self.spec["env_region"], self.installation_id, self.installation_key,
                                          self.spec["push_notifications"])
        if self.spec["preconfigured"]:
            env_values += envfile.cloud_communication_values(self.spec["region"])
        return layout.lay_out(os.path.join(self.sim.directory, self.name), url=self.url, bin_dir=self.host_bin,
                              spec=self.spec, env_values=env_values, org_id=self.organization_id, license_doc=org_license)

    @staticmethod
    def bind_settings(env):
        """GlobalSettings as the apps bind them from the containers' environment at start-up."""
        return effective_settings(env)

    # -- faults ------------------------------------------------------------------------------------------------
    def set_faults(self, faults):
        normalized = normalize_faults(faults)
        with self.lock:
            self.faults = normalized
            self._apply_cloud_faults()
            layout.lay_out_host_bin(self.host_bin, self.sim.docker_path, normalized["compose_v1"])

    def rotate_billing_sync_token(self):
        """An owner generated a new billing sync token in the cloud web vault: the old one stops working there."""
        with self.lock:
            self.inventory_token = envfile.random_string(30)
            self._apply_cloud_faults()
            return self.inventory_token

    def _apply_cloud_faults(self):
        """wrong_billing_sync_token: the cloud holds another token than the inventory's; cloud_account: the cloud
        organization has no subscription, an unpaid one, never generated a billing sync token, or was deleted."""
        key = self.inventory_token
        if self.faults["wrong_billing_sync_token"]:
            key = "rotated-" + self.inventory_token[::-1]
        account = self.faults["cloud_account"]
        org = self.cloud.organizations[self.cloud_organization_id]
        org["billing_sync_key"] = None if account == "no_billing_sync_key" else key
        org["subscription"] = {"no_subscription": None, "unpaid": "canceled"}.get(account, "active")
        org["deleted"] = account == "deleted"

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
        if rule.get("body") is not None:
            response = Response(status, rule["body"].encode("utf-8"), rule.get("content_type"), trickle=rule.get("trickle"))
        elif status == 429:
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
                self.settings = self.bind_settings(env)
                self.start_error = None
            except StartupError as exc:
                self.settings = None
                self.start_error = str(exc)
            self.state = "down" if self.start_error else ("starting" if warmup > 0 else "up")
            self.containers = True
            self.containers_created_at = time.monotonic()
            self.started_env = env
            self.api_log.configure(env)
        if self.start_error:
            self.sim.log(f"{self.name}: start-up failed: {self.start_error}")
        self._schedule_sponsorship_job(generation)
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
            self.containers = False
        self.listener.stop()

    # -- the compose project the docker stand-in drives (docker.py) -------------------------------------------
    def compose_files(self):
        files = [self.paths.compose_file]
        return files + [self.paths.compose_override] if os.path.exists(self.paths.compose_override) else files

    def containers_exist(self):
        with self.lock:
            return self.containers

    def remove_containers(self):
        self.go_down()

    def exec_in(self, service, command):
        """BusyBox wget in the Alpine images (their HEALTHCHECK uses it; no curl in the standard images): a GET through
        the containers' egress, the one the server's own cloud calls take (`_resolve`, its faults)."""
        if command[:1] != ["wget"]:
            return super().exec_in(service, command)
        url = next((a for a in reversed(command[1:]) if not a.startswith("-") and "://" in a), "")
        host = urllib.parse.urlsplit(url).hostname or ""
        if self.faults["cloud_drop"]:  # BusyBox wget gives up after -T seconds without data
            seconds = float(command[command.index("-T") + 1]) if "-T" in command[:-1] else 900.0
            self.sim.stopping.wait(seconds)
            return "", "wget: download timed out\n", 1
        try:
            self._resolve(url)
        except Unreachable:
            return "", f"wget: bad address '{host}'\n", 1
        if urllib.parse.urlsplit(url).path.rstrip("/") != "/alive":
            return "", "wget: server returned error: HTTP/1.1 404 Not Found\n", 1
        return "", "", 0

    def apps_answer(self):
        with self.lock:
            return self.state == "up"

    def compose_up(self):
        """Create the containers, or recreate them when the env files resolve differently (the settings are read
        again); unchanged running containers are left alone. The restart faults act here."""
        try:
            env = self.read_environment()
        except envfile.EnvFileError as exc:
            return "", f"{exc}\n", 1
        with self.lock:
            exists, changed, fault = self.containers, env != self.started_env, self.faults["restart"]
        services = list(self.services())
        if exists and not changed:
            return "".join(f" Container bitwarden-{s}  Running\n" for s in services), "", 0
        with self.lock:
            self.restarts += 1
        self.sim.log(f"{self.name}: compose up ({'recreate' if exists else 'create'})")
        progress = "".join(f" Container bitwarden-{s}  {'Recreated' if exists else 'Created'}\n" for s in services)
        self.go_down()
        if fault == "hangs":
            self.sim.stopping.wait()
            return "", "", 1
        time.sleep(self.spec["restart_delay"])
        if fault == "fail":
            return progress, UP_FAILED, 1
        if fault == "never_returns":
            with self.lock:
                self.containers = True  # created, but the apps never answer
                self.containers_created_at = time.monotonic()
            return progress, "", 0
        self.boot(env, self.spec["warmup"])
        return progress + "".join(f" Container bitwarden-{s}  Started\n" for s in services), "", 0

    def setup(self, argv):
        """The setup container run.sh starts: `-printenv` after a start, `-update 1` for rebuild/updateconf/update."""
        if "-printenv" in argv:
            return PRINTENV.format(url=self.url), "", 0
        if "-update" in argv and "-db" not in argv:
            self._rebuild_env()
            return "Building docker environment files.\nBuilding docker environment override files.\n", "", 0
        return "", "", 0

    def run_script_command(self, command, user):
        """What `bitwarden.sh <command>` makes run.sh do through docker; -> (stdout, stderr, exit code)."""
        with self.op_lock:
            self.sim.log(f"{self.name}: bitwarden.sh {command} by {user}")
            env = {"COMPOSE_FILE": ":".join(self.compose_files())}
            # run.sh's dccmd: the compose plugin, else docker-compose (v1) when the host has it
            compose = "docker-compose" if self.faults["compose_v1"] else "docker"
            if self.faults["no_compose"] and not self.faults["compose_v1"]:
                return "", NO_COMPOSE_AT_ALL, 1
            setup_image = f"ghcr.io/bitwarden/setup:{self.spec['version']}"
            mount = ["-v", f"{self.paths.bwdata}:/bitwarden", setup_image, "/app/Setup"]
            letsencrypt = os.path.join(self.paths.bwdata, "letsencrypt")
            argvs = {"pull": (compose, ["pull"]), "up": (compose, ["up", "-d"]), "pull-setup": ("docker", ["pull", setup_image]),
                     "printenv": ("docker", ["run", *mount, "-printenv", "1"]),
                     "update": ("docker", ["run", *mount, "-update", "1"]),
                     "pull-certbot": ("docker", ["pull", "certbot/certbot"]),
                     "certbot": ("docker", ["run", "-i", "--rm", "--name", "certbot", "-p", "443:443", "-p", "80:80", "-v",
                                            f"{letsencrypt}:/etc/letsencrypt/", "certbot/certbot", "renew", "--logs-dir",
                                            "/etc/letsencrypt/logs"])}
            out, err = "", ""
            steps = []
            for step in RUN_SH.get(command, ()):
                if step == "letsencrypt":
                    steps += ["pull-certbot", "certbot"] if os.path.isdir(os.path.join(letsencrypt, "live")) else []
                else:
                    steps.append(step)
            for step in steps:
                if step == "down":
                    listing = self._compose_run(compose, ["ps"], env, user)[0]
                    if len(listing.splitlines()) <= 2:
                        continue
                    program, argv = compose, ["down"]
                else:
                    program, argv = argvs[step]
                step_out, step_err, code = self._compose_run(program, argv, env, user)
                out, err = out + step_out, err + step_err
                if code:
                    return out, err, code
            return out, err, 0

    def _compose_run(self, program, argv, env, user):
        if program == "docker" and argv[0] in ("ps", "down", "pull", "up"):
            argv = ["compose", *argv]
        return self.sim.docker.run(argv, self.paths.root, env, user, program)

    def _rebuild_env(self):
        with open(self.paths.env_file, encoding="utf-8") as handle:
            text = handle.read()
        with open(self.paths.env_file, "w", encoding="utf-8", newline="") as handle:
            handle.write(envfile.rebuild(text, self.url, self.spec["push_notifications"]))
        os.chmod(self.paths.env_file, 0o600)

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
        """UpdateOrganizationLicenseCommand writes the new license file (JsonSerializer: PascalCase) and copies
        its expiry to the organization row."""
        pascal = pascal_case(license_doc)
        with open(self.paths.license_file(org_id), "w", encoding="utf-8") as handle:
            json.dump(pascal, handle, indent=2)
        with self.lock:
            self.organization_expiration = pascal.get("Expires")
            self.organization_plan = {key: pascal.get(key) for key in ("Seats", "Plan", "PlanType")}  # Organization.UpdateFromLicense

    def read_license(self, org_id):
        """LicensingService.ReadOrganizationLicenseAsync: None without a file; JsonSerializer defaults (case-sensitive)."""
        try:
            with open(self.paths.license_file(org_id), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    # -- jobs (src/Api/Jobs/JobsHostedService.cs, contract 4.1) --------------------------------------------------
    def _schedule_sponsorship_job(self, generation):
        """Registered at api start only when self-hosted with cloud communication on; first run at start + 0-23 h."""
        with self.lock:
            settings = self.settings
            if not settings or not (settings["selfHosted"] and settings["enableCloudCommunication"]):
                self.sponsorship_job_due = None
                return
            self.sponsorship_job_due = time.time() + random.randrange(24) * 3600
            due = self.sponsorship_job_due
        self._arm_sponsorship_timer(generation, due)

    def _arm_sponsorship_timer(self, generation, due):
        timer = threading.Timer(max(0.0, due - time.time()), self._sponsorship_trigger, args=(generation,))
        timer.daemon = True
        timer.start()

    def _sponsorship_trigger(self, generation):
        with self.lock:
            if self.generation != generation or self.sponsorship_job_due is None:
                return  # the api was stopped or restarted: that start's trigger is gone
            self.sponsorship_job_due += DAY
            due = self.sponsorship_job_due
        self.run_sponsorship_job()
        self._arm_sponsorship_timer(generation, due)

    def fire_job(self, job):
        """Control route: the trigger fires now (the daily schedule continues from its own time)."""
        if job != SPONSORSHIP_JOB:
            raise ValueError(f"unknown job {job!r}; known: {SPONSORSHIP_JOB}")
        with self.lock:
            if self.state != "up" or self.sponsorship_job_due is None:
                raise ValueError(f"{SPONSORSHIP_JOB} is not scheduled on {self.name} (api down, or cloud communication "
                                 "was off at api start)")
        self.run_sponsorship_job()
        return {"job": job, "sponsorship_last_sync": self.sponsorship_last_sync}

    def run_sponsorship_job(self):
        """SelfHostedSponsorshipSyncJob.ExecuteJobAsync between the JobListener's start and finish lines."""
        request_id = ""  # a Quartz job runs outside any request
        log = self.api_log
        log.info(apilog.JOB_STARTING, (SPONSORSHIP_JOB, apilog.dotnet_date(datetime.datetime.now(datetime.timezone.utc))),
                 bypass=True)
        connection = self.find_connection(self.organization_id, 1)
        if connection is not None and connection["enabled"]:
            config = json.loads(connection["config"])
            failure = self._sync_sponsorships(config, request_id)
            if failure:
                log.error(apilog.SPONSORSHIP_FAILED, (self.organization_name,), request_id, failure)
        log.info(apilog.JOB_FINISHED, (SPONSORSHIP_JOB, apilog.dotnet_date(datetime.datetime.now(datetime.timezone.utc))),
                 bypass=True)

    def _sync_sponsorships(self, config, request_id):
        """SelfHostedSyncSponsorshipsCommand.SyncOrganization; None when done (or nothing to do), else the exception the
        job logs."""
        failed = "Bit.Core.Exceptions.BadRequestException: Organization sync failed\n" + SPONSORSHIP_TRACE
        if self.sponsorships == 0:
            self.api_log.info(apilog.NO_SPONSORSHIPS, (apilog.Bare(self.organization_id),), request_id)
            return None  # the cloud is not called
        sync_url = uri_string(self.settings["apiUri"]) + "organization/sponsorship/sync"
        token = self._cloud_token("api.installation", sync_url, request_id)
        if token is None:
            return failed
        self.counters.bump("cloud_calls")
        try:
            cloud, service = self._resolve(sync_url)
            if service != "api":
                return failed
            result = self._rate_limited(cloud, "api", "POST", "/organization/sponsorship/sync") or cloud.sponsorship_sync(
                token, {"billingSyncKey": config.get("BillingSyncKey"), "sponsoringOrganizationCloudId": config.get("CloudOrganizationId"),
                        "sponsorshipsBatch": [{} for dummy in range(self.sponsorships)]})
        except Unreachable as exc:
            self.api_log.error(apilog.SEND_FAILED, (sync_url,), request_id,
                               f"System.Net.Http.HttpRequestException: {exc}\n{UNREACHABLE_TRACE}")
            return failed
        if result.status != 200:
            self.api_log.request_unsuccessful(sync_url, result.status_name, result.reason,
                                              (result.body or {}).get("message"), request_id)
            return failed
        return self.upsert_sponsorships()

    def upsert_sponsorships(self):
        """OrganizationSponsorshipRepository.UpsertManyAsync of the synced sponsorships (Dapper: SQL Server)."""
        with self.lock:
            self.sponsorship_last_sync = dotnet_datetime(time.time_ns(), "Z")
        return None

    def fetch_cloud_license(self, cloud_org_id, billing_sync_key, request_id):
        """GetSelfHostedOrganizationLicenseQuery via BaseIdentityClientService; failures only reach the api log."""
        try:
            uri_string(self.settings["identityUri"])
            api_base = uri_string(self.settings["apiUri"])
        except ValueError as exc:
            raise ApiError(json_response(500, {"object": "error", "message": "An unhandled server error has occurred.", "validationErrors": None,
                                               "exceptionMessage": None, "exceptionStackTrace": None, "innerExceptionMessage": None})) from exc
        license_url = api_base + f"licenses/organization/{cloud_org_id}"
        log = self.api_log
        token = self._cloud_token("api.licensing", license_url, request_id, "GET")
        if token is None:
            return None
        self.counters.bump("cloud_calls")
        try:
            cloud, service = self._resolve(license_url)
            path = urllib.parse.urlsplit(license_url).path
            result = self._rate_limited(cloud, service, "GET", path)
            if result is None and service == "api" and path.startswith("/licenses/organization/"):
                result = cloud.organization_license(token, cloud_org_id, {"licenseKey": self.license_key, "billingSyncKey": billing_sync_key})
            result = result or CloudResponse(404)
        except Unreachable as exc:
            log.error(apilog.SEND_FAILED, (license_url,), request_id,
                      f"System.Net.Http.HttpRequestException: {exc}\n{UNREACHABLE_TRACE}")
            return None
        if result.status == 200:
            return result.body
        if result.body is None:
            log.error(apilog.SEND_FAILED, (license_url,), request_id,
                      "System.Text.Json.JsonException: The input does not contain any JSON tokens. Expected the input to start with a valid JSON "
                      "token, while reading the response body.")
            return None
        if result.body.get("message") == "Invalid license key." and self.spec["error_delay"]:
            time.sleep(self.spec["error_delay"])
        log.request_unsuccessful(license_url, result.status_name, result.reason, result.body.get("message"), request_id)
        return None

    def _cloud_token(self, scope, target_url, request_id, method="POST"):
        """BaseIdentityClientService.HandleTokenStateAsync: an installation token, or None with the reason logged."""
        settings = self.settings
        client_id = f"installation.{settings['installationId']}"
        identity_base = uri_string(settings["identityUri"])
        token_url = identity_base + "connect/token"
        log = self.api_log
        self.counters.bump("cloud_calls")
        response = None
        if self.faults["cloud_drop"]:
            self.sim.stopping.wait(HTTPCLIENT_TIMEOUT)  # SYN after SYN unanswered until HttpClient.Timeout
            log.error(apilog.AUTH_FAILED, (), request_id, HTTPCLIENT_TIMEOUT_TRACE)
            log.error(apilog.TOKEN_EMPTY, (apilog.Bare(identity_base), client_id), request_id)
            log.no_token(method, target_url, request_id)
            return None
        try:
            cloud, service = self._resolve(token_url)
            path = urllib.parse.urlsplit(token_url).path
            response = self._rate_limited(cloud, service, "POST", path)
            if response is None and service == "identity" and path == "/connect/token":
                response = cloud.token({"grant_type": "client_credentials", "scope": scope, "client_id": client_id,
                                        "client_secret": settings["installationKey"]})
            response = response or CloudResponse(404)
        except Unreachable as exc:
            log.error(apilog.AUTH_FAILED, (), request_id, f"System.Net.Http.HttpRequestException: {exc}\n{UNREACHABLE_TRACE}")
        if response is None:
            log.error(apilog.TOKEN_EMPTY, (apilog.Bare(identity_base), client_id), request_id)
        elif response.status != 200:
            log.error(apilog.TOKEN_UNSUCCESSFUL, (apilog.Bare(identity_base), client_id, apilog.Bare(response.status_name),
                                                  response.reason), request_id)
        if response is None or response.status != 200:
            log.no_token(method, target_url, request_id)
            return None
        return response.body["access_token"]

    def _rate_limited(self, cloud, service, method, path):
        """The cloud's per-IP limit, counted for this instance's egress address: None, or the 429 it answers."""
        response = cloud.rate_limiter.admit(service, method, path, self.egress)
        if response is not None:
            self.counters.bump("cloud_rate_limited")
        return response

    def _resolve(self, url):
        # The host's egress faults of the served clouds block the server's own cloud calls as well.
        if self.faults["cloud_unreachable"] or self.spec["cloud_endpoint_fault"] in ("dns", "refused", "tls"):
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
        pause.at_request(self.faults, request.method, request.path, self.sim.stopping)
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
            if self.faults["cloud_drop"]:
                return self._behind_nginx_timeout(route, request, params)
            return self._handle_app(route, request, params)
        if lowered in ("/", "/index.html"):
            return text_response(200, "<!doctype html><html><head><title>Bitwarden Web vault</title></head><body></body></html>", "text/html")
        return nginx_page(404, "Not Found")

    @staticmethod
    def _handle_app(route, request, params):
        try:
            return route.handler(request, params)
        except ApiError as exc:
            return exc.response

    def _behind_nginx_timeout(self, route, request, params):
        """nginx answers 504 when the app has not answered within proxy_read_timeout, and the app runs on. Only a
        dropped egress makes a request that long, so only then does the request get a thread of its own."""
        answer = []
        worker = threading.Thread(target=lambda: answer.append(self._handle_app(route, request, params)), daemon=True)
        worker.start()
        worker.join(NGINX_PROXY_READ_TIMEOUT)
        return answer[0] if answer else nginx_page(504, "Gateway Time-out")

    # -- control views -------------------------------------------------------------------------------------------
    def summary(self):
        with self.lock:
            settings = self.settings or {}
            return {"name": self.name, "deployment": self.deployment, "url": self.url, "port": self.port, "state": self.state,
                    "version": self.spec["version"],
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
                "egress": self.egress,
                "credentials": self.credentials(),
                "billing_sync_token": self.cloud.organizations[self.cloud_organization_id]["billing_sync_key"],
                "inventory_billing_sync_token": self.inventory_token,
                "connection": self.api.connection_response(connection) if connection else None,
                "sponsorships": self.sponsorships,
                "sponsorship_last_sync": self.sponsorship_last_sync,
                "sponsorship_job_due": self.sponsorship_job_due,
                "devices": [d["identifier"] for d in self.devices],
                "counters": self.counters.snapshot(),
                "faults": copy.deepcopy(self.faults),
                "docker_calls": self.sim.docker.calls_of(self),
            })
            return state


def pascal_case(document):
    """JsonSerializer.Serialize without naming options: the C# property names."""
    return {key[0].upper() + key[1:]: value for key, value in document.items()}

"""Fleet file parsing: defaults, per-instance overrides, fault sets."""

import copy
import re

import yaml

from . import pause

DEFAULTS = {
    "version": "2026.8.0",
    "region": "US",
    "env_region": None,
    "tls": False,
    "restart_delay": 1.0,
    "warmup": 0.5,
    "error_delay": 0.0,
    "push_notifications": True,
    "license": True,
    "preconfigured": False,
    "synced_hours_ago": 0,     # preconfigured: the owner's license sync was this many hours before `bwsim up`
    "deployment": "standard",
    "subscription_days": 365,  # days until the cloud organization's paid period ends (license expiry without grace)
    "sponsorships": 0,         # Families sponsorships offered locally (the sponsorship sync job only calls with some)
    "faults": {},
    "cloud_endpoint_fault": None,
    "compose_file": "docker-compose.yml",  # Lite: the name of its compose file (any name docker compose looks for)
    # The public address the instance's cloud calls leave from; the clouds' per-IP rate limits count per egress.
    # null: its own. Give many instances one name to put them behind one NAT.
    "egress": None,
}
# Fleet-level keys (top level of the fleet file) and their defaults.
FLEET_OPTIONS = {"serve_clouds": True}
CLOUD_ENDPOINT_FAULTS = (None, "dns", "refused", "tls", "wrong_region")

REGIONS = ("US", "EU")
DEPLOYMENTS = ("standard", "lite")
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
RESTART_FAULTS = ("ok", "fail", "never_returns", "hangs")
# Host faults (bwsim/docker.py): pull_fails = ghcr.io unreachable from the docker CLI and the daemon alike;
# cli_registry_unreachable / daemon_registry_unreachable = only one of the two paths fails (the CLI has no daemon
# proxy, mirrors or insecure registries; the daemon has no shell proxy); docker_hub_unreachable = Docker Hub
# (certbot/certbot) unreachable; compose_v1 = no compose plugin, but docker-compose v1 on PATH.
HOST_FAULTS = ("pull_fails", "no_compose", "images_missing", "cli_registry_unreachable", "daemon_registry_unreachable",
               "docker_hub_unreachable", "compose_v1")
# The cloud organization's account as LicensesController / ValidateBillingSyncKeyCommand see it (contract §11).
CLOUD_ACCOUNTS = ("ok", "no_subscription", "unpaid", "no_billing_sync_key", "deleted")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class FleetError(ValueError):
    """The fleet file or a fault set is invalid."""


def parse_version(text):
    """'2026.8.0' -> (2026, 8, 0); the server compares versions numerically."""
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)$", str(text))
    if not match:
        raise FleetError(f"version must look like 2026.8.0, got {text!r}")
    return tuple(int(part) for part in match.groups())


def normalize_faults(faults):
    """Validate a fault set and fill in defaults; returns a new dict."""
    if faults is None:
        faults = {}
    if not isinstance(faults, dict):
        raise FleetError("faults must be a mapping")
    unknown = set(faults) - {"restart", "http", "pause", "cloud_unreachable", "cloud_drop", "wrong_billing_sync_token",
                             "cloud_account", *HOST_FAULTS}
    if unknown:
        raise FleetError(f"unknown fault(s): {', '.join(sorted(unknown))}")
    restart = faults.get("restart", "ok")
    if restart not in RESTART_FAULTS:
        raise FleetError(f"faults.restart must be one of {RESTART_FAULTS}, got {restart!r}")
    cloud_account = faults.get("cloud_account", "ok")
    if cloud_account not in CLOUD_ACCOUNTS:
        raise FleetError(f"faults.cloud_account must be one of {CLOUD_ACCOUNTS}, got {cloud_account!r}")
    http = []
    for rule in faults.get("http") or []:
        if not isinstance(rule, dict) or "status" not in rule:
            raise FleetError(f"faults.http entries need at least a status: {rule!r}")
        extra = set(rule) - {"method", "path_prefix", "status", "times", "retry_after", "body", "content_type", "trickle"}
        if extra:
            raise FleetError(f"unknown keys in faults.http entry: {', '.join(sorted(extra))}")
        status = int(rule["status"])
        # With a body, any answer something in front of the server can give (a captive portal's 200 page).
        if not (200 if "body" in rule else 400) <= status <= 599:
            raise FleetError(f"faults.http status must be 4xx/5xx (200-599 with a body), got {status}")
        http.append({
            "method": str(rule.get("method") or "").upper() or None,
            "path_prefix": str(rule.get("path_prefix") or "/"),
            "status": status,
            "times": int(rule.get("times", 1)),
            "retry_after": rule.get("retry_after"),
            "body": None if rule.get("body") is None else str(rule["body"]),
            "content_type": rule.get("content_type"),
            "trickle": None if rule.get("trickle") is None else float(rule["trickle"]),
        })
    return {
        "restart": restart,
        "http": http,
        "pause": pause.normalize(faults.get("pause"), FleetError),
        "cloud_unreachable": bool(faults.get("cloud_unreachable", False)),
        "cloud_drop": bool(faults.get("cloud_drop", False)),
        "wrong_billing_sync_token": bool(faults.get("wrong_billing_sync_token", False)),
        "cloud_account": cloud_account,
        **{key: bool(faults.get(key, False)) for key in HOST_FAULTS},
    }


def _instance_spec(raw, defaults):
    if not isinstance(raw, dict) or not raw.get("name"):
        raise FleetError(f"every instance needs a name: {raw!r}")
    unknown = set(raw) - set(DEFAULTS) - {"name"}
    if unknown:
        raise FleetError(f"{raw['name']}: unknown key(s) {', '.join(sorted(unknown))}")
    spec = copy.deepcopy(defaults)
    spec.update(copy.deepcopy(raw))
    name = str(spec["name"])
    if not NAME_RE.match(name):
        raise FleetError(f"invalid instance name {name!r}")
    spec["name"] = name
    spec["version"] = str(spec["version"])
    parse_version(spec["version"])
    spec["region"] = str(spec["region"]).upper()
    if spec["region"] not in REGIONS:
        raise FleetError(f"{name}: region must be US or EU")
    spec["env_region"] = str(spec["env_region"] or spec["region"]).upper()
    if spec["deployment"] not in DEPLOYMENTS:
        raise FleetError(f"{name}: deployment must be standard or lite")
    if spec["compose_file"] not in COMPOSE_NAMES or spec["compose_file"] != "docker-compose.yml" and spec["deployment"] != "lite":
        raise FleetError(f"{name}: compose_file is for Lite only and one of {', '.join(COMPOSE_NAMES)}")
    for key in ("tls", "push_notifications", "license", "preconfigured"):
        spec[key] = bool(spec[key])
    for key in ("restart_delay", "warmup", "error_delay"):
        spec[key] = float(spec[key])
    for key in ("subscription_days", "sponsorships", "synced_hours_ago"):
        spec[key] = int(spec[key])
    if spec["sponsorships"] < 0:
        raise FleetError(f"{name}: sponsorships must be 0 or more")
    if spec["synced_hours_ago"] < 0:
        raise FleetError(f"{name}: synced_hours_ago must be 0 or more")
    if spec["egress"] is not None and not NAME_RE.match(str(spec["egress"])):
        raise FleetError(f"{name}: egress must be a name like nat-1, got {spec['egress']!r}")
    spec["egress"] = None if spec["egress"] is None else str(spec["egress"])
    spec["faults"] = normalize_faults(spec["faults"])
    if spec["cloud_endpoint_fault"] not in CLOUD_ENDPOINT_FAULTS:
        raise FleetError(f"{name}: cloud_endpoint_fault must be one of {CLOUD_ENDPOINT_FAULTS}")
    return spec


def build_fleet(data, restart_delay=None):
    """Fleet document (dict) -> list of instance specs (dicts with every key of DEFAULTS plus name)."""
    if not isinstance(data, dict):
        raise FleetError("the fleet file must be a mapping with 'instances'")
    unknown = set(data) - {"defaults", "instances"} - set(FLEET_OPTIONS)
    if unknown:
        raise FleetError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    defaults = copy.deepcopy(DEFAULTS)
    file_defaults = data.get("defaults") or {}
    unknown = set(file_defaults) - set(DEFAULTS)
    if unknown:
        raise FleetError(f"unknown key(s) in defaults: {', '.join(sorted(unknown))}")
    defaults.update(file_defaults)
    if restart_delay is not None:
        defaults["restart_delay"] = restart_delay
    instances = data.get("instances") or []
    if not instances:
        raise FleetError("the fleet has no instances")
    specs = [_instance_spec(raw, defaults) for raw in instances]
    names = [spec["name"] for spec in specs]
    if len(set(names)) != len(names):
        raise FleetError("instance names must be unique")
    return specs


def fleet_options(data):
    """The fleet-level options of a fleet document, defaults filled in."""
    options = dict(FLEET_OPTIONS)
    options.update({key: bool(data[key]) for key in FLEET_OPTIONS if isinstance(data, dict) and key in data})
    return options


def default_fleet(count):
    """The fleet `--instances N` stands for: N US instances bw-1..bw-N."""
    if count < 1:
        raise FleetError("--instances must be at least 1")
    return {"instances": [{"name": f"bw-{i}"} for i in range(1, count + 1)]}


def load_fleet(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)

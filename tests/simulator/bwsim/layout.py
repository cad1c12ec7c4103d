"""An instance's install dir, laid out like a real standard deployment (DIR/<name>/)."""

import json
import os
import shutil
import sys

from . import envfile
from .settings import GLOBAL_ENV

TEMPLATE = os.path.join(os.path.dirname(__file__), "templates", "bitwarden.sh")


class InstallDir:
    """Paths of one install dir (`bitwarden.sh` next to `bwdata/`)."""

    def __init__(self, root):
        self.root = root
        self.bwdata = os.path.join(root, "bwdata")
        self.script = os.path.join(root, "bitwarden.sh")
        self.script_log = os.path.join(root, "bitwarden.sh.log")
        self.config_yml = os.path.join(self.bwdata, "config.yml")
        self.env_file = os.path.join(self.bwdata, "env", "global.override.env")
        self.uid_env = os.path.join(self.bwdata, "env", "uid.env")
        self.global_env = os.path.join(self.bwdata, "docker", "global.env")
        self.license_dir = os.path.join(self.bwdata, "core", "licenses", "organization")

    def license_file(self, org_id):
        return os.path.join(self.license_dir, f"{org_id}.json")


def script_python():
    """An interpreter every user can run (the venv's may live under /root); bitwarden.sh needs only the stdlib."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.chmod(path, mode)


def config_yml(url, push_notifications):
    return (
        "# Bitwarden installation configuration (written by bwsim like Setup does)\n"
        "#\n# Full URL for accessing the installation from a browser. (Required)\n"
        f"url: {url}\n"
        "#\n# Auto-generate the `./docker/docker-compose.yml` config file.\n"
        "generate_compose_config: true\n"
        "#\n# Auto-generate the `./nginx/default.conf` file.\n"
        "generate_nginx_config: true\n"
        "#\n# Communicate with the Bitwarden push relay service (push.bitwarden.com) for mobile app live sync.\n"
        f"push_notifications: {'true' if push_notifications else 'false'}\n"
        "#\n# Use a docker volume (`mssql_data`) instead of a host-mapped volume for the persisted database.\n"
        "database_docker_volume: false\n"
    )


def uid_env():
    """run.sh writes the install user's ids; root is mapped to nobody (65534)."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        uid = gid = 65534
    return f"LOCAL_UID={uid}\nLOCAL_GID={gid}\n"


def render_script(name, control_url, version, allow_root):
    with open(TEMPLATE, encoding="utf-8") as handle:
        text = handle.read()
    for key, value in (
        ("@SIM_NAME@", name),
        ("@SIM_CONTROL@", control_url),
        ("@SIM_PYTHON@", script_python()),
        ("@SIM_ALLOW_ROOT@", "true" if allow_root else "false"),
        ("@COREVERSION@", version),
    ):
        text = text.replace(key, value)
    return text


def lay_out(root, *, name, url, control_url, spec, env_values, org_id, license_doc):
    """Create (or recreate) the install dir for one instance."""
    if os.path.isdir(root):
        shutil.rmtree(root)
    paths = InstallDir(root)
    _write(paths.script, render_script(name, control_url, spec["version"], spec["allow_root"]), 0o755)
    _write(paths.script_log, "", 0o644)
    _write(paths.config_yml, config_yml(url, spec["push_notifications"]))
    _write(paths.env_file, envfile.render(env_values), 0o600)
    _write(paths.uid_env, uid_env(), 0o600)
    _write(paths.global_env, envfile.render(GLOBAL_ENV.items()))
    os.makedirs(paths.license_dir, exist_ok=True)
    if license_doc is not None:
        _write(paths.license_file(org_id), json.dumps(license_doc, indent=2) + "\n")
    os.makedirs(os.path.join(paths.bwdata, "logs", "api", "Api"), exist_ok=True)
    return paths

"""An instance's install dir, laid out like a real standard deployment (DIR/<name>/)."""

import json
import os
import shutil
import sys

from . import envfile
from .settings import GLOBAL_ENV

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
# bwdata/docker/docker-compose.yml: the services Setup writes for a standard deployment (DockerCompose.hbs)
CORE_SERVICES = ("mssql", "web", "attachments", "api", "identity", "sso", "admin", "portal", "icons", "notifications",
                 "events", "nginx")


class InstallDir:
    """Paths of one install dir (`bitwarden.sh` next to `bwdata/`)."""

    def __init__(self, root):
        self.root = root
        self.bwdata = os.path.join(root, "bwdata")
        self.script = os.path.join(root, "bitwarden.sh")
        self.script_log = os.path.join(root, "bitwarden.sh.log")
        self.run_script = os.path.join(self.bwdata, "scripts", "run.sh")
        self.docker_dir = os.path.join(self.bwdata, "docker")
        self.compose_file = os.path.join(self.docker_dir, "docker-compose.yml")
        self.compose_override = os.path.join(self.docker_dir, "docker-compose.override.yml")
        self.config_yml = os.path.join(self.bwdata, "config.yml")
        self.env_file = os.path.join(self.bwdata, "env", "global.override.env")
        self.uid_env = os.path.join(self.bwdata, "env", "uid.env")
        self.global_env = os.path.join(self.bwdata, "docker", "global.env")
        self.license_dir = os.path.join(self.bwdata, "core", "licenses", "organization")
        self.api_log_root = os.path.join(self.bwdata, "logs", "api")  # the api container's /etc/bitwarden/logs

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


def render(template, **values):
    with open(os.path.join(TEMPLATES, template), encoding="utf-8") as handle:
        text = handle.read()
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", value)
    return text


def compose_yml(version):
    """The part of Setup's docker-compose.yml the simulator reads: services and their images."""
    lines = ["#", "# Useful references:", "# https://docs.docker.com/compose/compose-file/", "#",
             "# WARNING: This file is generated. Do not make changes to this file.", "# They will be overwritten on update.",
             "# You can manage various settings used in this file from the ./bwdata/config.yml file for your installation.",
             "", "services:"]
    for service in CORE_SERVICES:
        image = f"ghcr.io/bitwarden/{service}:{version}"
        lines += [f"  {service}:", f"    image: {image}", f"    container_name: bitwarden-{service}", "    restart: always"]
        if service not in ("web", "nginx", "icons", "attachments"):
            lines += ["    env_file:", "      - global.env", "      - ../env/uid.env", "      - ../env/global.override.env"]
    return "\n".join(lines) + "\n"


def lay_out_docker(bin_dir, control_url):
    """DIR/bin/docker: the stand-in the simulated scripts find on PATH (and the inventory names for the role)."""
    path = os.path.join(bin_dir, "docker")
    # an interpreter every user can run, in isolated mode (the template's env shebang keeps ansible-test's check happy)
    body = render("docker", sim_control=control_url).split("\n", 1)[1]
    _write(path, f"#!{script_python()} -I\n{body}", 0o755)
    return path


def lay_out_host_bin(host_bin, docker_path, compose_v1):
    """DIR/hosts/<name>/bin: the host's own /usr/bin, with docker, and docker-compose (v1) only on a compose v1 host
    (bitwarden.sh finds it with `command -v`, as on a real host)."""
    os.makedirs(host_bin, exist_ok=True)
    for name, wanted in (("docker", True), ("docker-compose", compose_v1)):
        link = os.path.join(host_bin, name)
        if wanted and not os.path.lexists(link):
            os.symlink(docker_path, link)
        elif not wanted and os.path.lexists(link):
            os.unlink(link)
    return os.path.join(host_bin, "docker")


def lay_out(root, *, url, bin_dir, spec, env_values, org_id, license_doc):
    """Create (or recreate) the install dir for one instance."""
    if os.path.isdir(root):
        shutil.rmtree(root)
    paths = InstallDir(root)
    _write(paths.script, render("bitwarden.sh", sim_bin=bin_dir, coreversion=spec["version"]), 0o755)
    _write(paths.run_script, render("run.sh"), 0o755)
    _write(paths.compose_file, compose_yml(spec["version"]))
    _write(paths.script_log, "", 0o644)
    _write(paths.config_yml, config_yml(url, spec["push_notifications"]))
    _write(paths.env_file, envfile.render(env_values), 0o600)
    _write(paths.uid_env, uid_env(), 0o600)
    _write(paths.global_env, envfile.render(GLOBAL_ENV.items()))
    lay_out_data(paths, org_id, license_doc)
    return paths


def lay_out_data(paths, org_id, license_doc):
    """The organization's license file and the api log dir, wherever the deployment keeps them."""
    os.makedirs(paths.license_dir, exist_ok=True)
    if license_doc is not None:
        _write(paths.license_file(org_id), json.dumps(license_doc, indent=2) + "\n")
    os.makedirs(paths.api_log_root, exist_ok=True)  # the entrypoint's mkdir -p /etc/bitwarden/logs

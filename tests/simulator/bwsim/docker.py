"""The host's docker engine and compose plugin, as the stand-in CLI (`DIR/bin/docker`) reaches them.

The stand-in sends its argv, working directory, COMPOSE_FILE and user to `POST /_sim/docker`; this module finds the
compose project the call is about and answers like docker/compose would (stdout, stderr, exit code). A project is
anything registered with `DockerHost.register(project_dir, project)` that offers the `ComposeProject` interface, so a
standard install (`bwdata/docker`) and a Bitwarden Lite dir (`docker-compose.yml` + `settings.env`) share it.
"""

import hashlib
import json
import os
import re
import threading
import time

import yaml

from . import pause

DOCKER_VERSION = "Docker version 28.2.2, build e6534b4"
COMPOSE_VERSION = "Docker Compose version v2.36.2"
# contract §7: what a host that cannot reach the registry gets from docker (measured: rc 18 from compose pull)
REGISTRY_ERROR = 'Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 127.0.0.53:53: no such host'
# The daemon's own egress (a wrong proxy in its systemd drop-in or daemon.json, a dead registry mirror): only pulls fail.
DAEMON_REGISTRY_ERROR = ('Get "https://ghcr.io/v2/": proxyconnect tcp: dial tcp 192.0.2.10:3128: connect: connection '
                         'refused')
DOCKER_HUB_ERROR = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host'
PULL_FAILED_RC = 18
CERTBOT_IMAGE = "certbot/certbot"
COMPOSE_V1_VERSION = "docker-compose version 1.29.2, build 5becea4c"
# docker-compose v1 (docopt) on an option it does not know, such as `config --images` (a v2 addition)
COMPOSE_V1_CONFIG_USAGE = ("Validate and view the Compose file.\n\nUsage: config [options]\n\nOptions:\n"
                           "    --resolve-image-digests  Pin image tags to digests.\n"
                           "    --no-interpolate         Don't interpolate environment variables.\n"
                           "    -q, --quiet              Only validate the configuration, don't print\n"
                           "                             anything.\n    --services               Print the service names, one per line.\n"
                           "    --volumes                Print the volume names, one per line.\n"
                           "    --hash=\"*\"               Print the service config hash, one per line.\n")
NO_COMPOSE = "docker: 'compose' is not a docker command.\nSee 'docker --help'\n"
NO_PROJECT = "no configuration file provided: not found\n"
COMPOSE_USAGE = ("\nUsage:  docker compose [OPTIONS] COMMAND\n\nDefine and run multi-container applications with Docker\n\n"
                 "Commands:\n  config      Parse, resolve and render compose file in canonical format\n"
                 "  down        Stop and remove containers, networks\n  images      List images used by the created containers\n"
                 "  ps          List containers\n  pull        Pull service images\n  up          Create and start containers\n"
                 "  version     Show the Docker Compose version information\n")
PS_HEADER = "NAME                      IMAGE                                    COMMAND                  SERVICE   CREATED   STATUS    PORTS"
# The images' HEALTHCHECKs set no interval: Docker's default 30 s, so the first check runs 30 s after the start and
# `ps` says "(health: starting)" until then; three failed checks in a row make it "unhealthy" (contract 11).
HEALTH_INTERVAL = 30.0
HEALTH_RETRIES = 3
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


class ComposeProject:
    """What a compose project offers the engine. Subclasses set `project_dir`, `container_prefix`, `faults`,
    and implement `containers_exist()`, `remove_containers()` and `compose_up()`; optionally `setup(argv)` (the
    standard deployment's setup container) and `host_root` (a dir above `project_dir` that is still this host's)."""

    project_dir = ""
    container_prefix = ""
    healthcheck = True  # the images define a HEALTHCHECK (Bitwarden Lite's does not, contract §5)
    containers_created_at = None  # time.monotonic() of the last `up` that created the containers

    def health(self):
        """What `docker compose ps` appends to a container's status: "" without a HEALTHCHECK, else "(health: starting)"
        until the first check, then "(healthy)" while the apps answer, "(unhealthy)" after HEALTH_RETRIES failures."""
        if not self.healthcheck:
            return ""
        age = time.monotonic() - (self.containers_created_at or time.monotonic())
        if age < HEALTH_INTERVAL:
            return " (health: starting)"
        if self.apps_answer():
            return " (healthy)"
        return " (unhealthy)" if age >= HEALTH_INTERVAL * HEALTH_RETRIES else " (health: starting)"

    def apps_answer(self):
        return True

    def exec_in(self, service, command):
        """A command in a running container -> (stdout, stderr, exit code); only what the images have."""
        return "", (f"OCI runtime exec failed: exec failed: unable to start container process: exec: \"{command[0]}\": "
                    "executable file not found in $PATH: unknown\n"), 126

    def extra_images(self):
        """Images present locally that the compose files do not name: certbot/certbot on a Let's Encrypt install
        (Setup pulled it to get the first certificate; run.sh restart pulls and runs it again)."""
        return [CERTBOT_IMAGE] if self.letsencrypt() else []

    def letsencrypt(self):
        return os.path.isdir(os.path.join(getattr(self, "host_root", self.project_dir), "bwdata", "letsencrypt", "live"))

    def compose_files(self):
        return [os.path.join(self.project_dir, "docker-compose.yml")]

    def services(self):
        """service -> image, from the compose files as compose resolves them (later files override)."""
        services = {}
        for path in self.compose_files():
            try:
                with open(path, encoding="utf-8") as handle:
                    document = yaml.safe_load(handle) or {}
            except FileNotFoundError:
                continue
            for name, service in (document.get("services") or {}).items():
                image = (service or {}).get("image")
                if image:
                    services[name] = VAR_RE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", str(image))
                else:
                    services.setdefault(name, "")
        return services

    def containers_exist(self):  # pragma: no cover - interface
        raise NotImplementedError

    def remove_containers(self):  # pragma: no cover - interface
        raise NotImplementedError

    def compose_up(self):  # pragma: no cover - interface
        """`docker compose up -d`: create missing containers, recreate those whose resolved environment changed,
        leave the rest running; -> (stdout, stderr, exit code); may block (the `restart: hangs` fault)."""
        raise NotImplementedError


def _digest(repo):
    """The registry digest of the image a repository's tag points at (stable per repository)."""
    return hashlib.sha256(("manifest " + repo).encode()).hexdigest()


def _container_id(name):
    return hashlib.sha256(name.encode()).hexdigest()[:12]


class DockerHost:
    """One engine per simulator process; each project answers for the host it stands for (its faults)."""

    def __init__(self, stopping):
        self.stopping = stopping
        self._projects = {}
        self._lock = threading.Lock()
        self.calls = {}

    def register(self, project_dir, project):
        with self._lock:
            self._projects[os.path.realpath(project_dir)] = project
            self.calls.setdefault(id(project), [])

    def calls_of(self, project):
        with self._lock:
            return list(self.calls.get(id(project), []))

    # -- finding the project ---------------------------------------------------------------------------------
    def _by_path(self, path):
        """The project whose dir holds `path` (the compose dir or one of its parents up to the install dir)."""
        path = os.path.realpath(path)
        with self._lock:
            best = None
            for project_dir, project in self._projects.items():
                roots = (project_dir, getattr(project, "host_root", project_dir))
                if any(path == root or path.startswith(root + os.sep) for root in roots):
                    if best is None or len(project_dir) > len(best[0]):
                        best = (project_dir, project)
            return best[1] if best else None

    def find(self, argv, cwd, env):
        """COMPOSE_FILE, then `-f`, then a `-v <bwdata>:/bitwarden` mount, then the working directory."""
        compose_file = env.get("COMPOSE_FILE") or ""
        if compose_file:
            return self._by_path(os.path.dirname(compose_file.split(":")[0]))
        for flag, value in zip(argv, argv[1:]):
            if flag in ("-f", "--file", "--project-directory"):
                return self._by_path(os.path.dirname(value) if flag != "--project-directory" else value)
            if flag in ("-v", "--volume") and value.endswith(":/bitwarden"):
                return self._by_path(os.path.join(value[:-len(":/bitwarden")], "docker"))
            if flag in ("-v", "--volume") and value.rstrip("/").endswith(":/etc/letsencrypt"):  # run.sh's certbot
                return self._by_path(os.path.dirname(value.rstrip("/")[:-len(":/etc/letsencrypt")]))
        return self._by_path(cwd) if cwd else None

    # -- the CLI ---------------------------------------------------------------------------------------------
    def run(self, argv, cwd, env, user, program="docker"):
        """-> (stdout, stderr, exit code) of `docker <argv>` (`docker-compose <argv>` when `program` says so)."""
        project = self.find(argv, cwd, env)
        faults = project.faults if project is not None else {}
        compose_args = argv if program == "docker-compose" else (argv[1:] if argv[:1] == ["compose"] else None)
        verb = next((a for a in compose_args if not a.startswith("-")), None) if compose_args is not None else None
        if verb in ("pull", "up"):
            pause.at_compose(faults, verb, self.stopping)
        missing = [path for path in (env.get("COMPOSE_FILE") or "").split(":")
                   if path and not os.path.exists(os.path.join(cwd or "/", path))]
        plugin_missing = program == "docker" and (faults.get("no_compose") or faults.get("compose_v1"))
        if verb not in (None, "version") and missing and not plugin_missing:
            # compose opens every file COMPOSE_FILE names before anything else
            result = "", f"open {os.path.join(cwd or '/', missing[0])}: no such file or directory\n", 1
        elif program == "docker-compose":
            result = self._compose_v1(argv, project, faults)
        else:
            result = self._dispatch(argv, project, faults)
        if program == "docker-compose":
            argv = [program, *argv]
        if project is not None:
            with self._lock:
                self.calls[id(project)].append({"argv": list(argv), "user": user, "exit_code": result[2]})
        return result

    def _dispatch(self, argv, project, faults):
        if argv in (["--version"], ["-v"]):
            return DOCKER_VERSION + "\n", "", 0
        if not argv:
            return "Usage:  docker [OPTIONS] COMMAND\n", "", 0
        if argv[0] == "compose":
            if faults.get("no_compose") or faults.get("compose_v1"):
                return "", NO_COMPOSE, 1
            return self._compose(argv[1:], project, faults)
        if argv[:2] == ["image", "inspect"]:
            return self._image_inspect(argv[2:], project, faults)
        if argv[:2] == ["manifest", "inspect"]:
            return self._manifest_inspect(argv[2:], faults)
        if argv[:2] == ["volume", "inspect"]:
            return self._volume_inspect(argv[2:])
        if argv[0] == "pull":
            return self._pull_image(argv[-1], faults)
        if argv[0] == "run":
            return self._run(argv, project, faults)
        return "", f"bwsim docker stand-in: `docker {' '.join(argv)}` is not simulated\n", 125

    def _volume_inspect(self, args):
        """`docker volume inspect --format '{{ .Mountpoint }}' NAME...` (a project offers `volume_mountpoint`)."""
        names, fmt, index = [], None, 0
        while index < len(args):
            if args[index] in ("-f", "--format"):
                fmt, index = args[index + 1], index + 2
            elif args[index].startswith("--format="):
                fmt, index = args[index].split("=", 1)[1], index + 1
            else:
                names.append(args[index])
                index += 1
        if fmt is None or fmt.replace(" ", "") != "{{.Mountpoint}}" or not names:
            return "", f"bwsim docker stand-in: `docker volume inspect {' '.join(args)}` is not simulated\n", 125
        with self._lock:
            projects = list(self._projects.values())
        out, err = "", ""
        for name in names:
            found = next((path for path in (getattr(project, "volume_mountpoint", lambda n: None)(name) for project in projects)
                          if path), None)
            if found:
                out += found + "\n"
            else:
                err += f"Error response from daemon: get {name}: no such volume\n"
        return out, err, 1 if err else 0

    def _compose(self, args, project, faults):
        options = [a for a in args if a.startswith("-")]
        words = [a for a in args if not a.startswith("-")]
        if not words:
            return COMPOSE_USAGE, "", 0
        verb = words[0]
        if verb == "version":
            return COMPOSE_VERSION + "\n", "", 0
        if project is None:
            return "", NO_PROJECT, 1
        if verb == "config" and "--images" in options:
            return "".join(image + "\n" for image in project.services().values() if image), "", 0
        if verb == "ps":
            return self._ps(project, quiet="-q" in options or "--quiet" in options), "", 0
        if verb == "down":
            return self._down(project), "", 0
        if verb == "pull":
            return self._pull(project, faults)
        if verb == "up" and ("-d" in options or "--detach" in options):
            return project.compose_up()
        if verb == "exec":
            return self._exec(args[args.index("exec") + 1:], project)
        return "", f"bwsim docker stand-in: `docker compose {' '.join(args)}` is not simulated\n", 125

    @staticmethod
    def _exec(args, project):
        """`docker compose exec [-T] SERVICE CMD…`: only in a running container of the project."""
        rest = list(args)
        while rest and rest[0].startswith("-"):
            rest.pop(0)
        if not rest:
            return "", "\"docker compose exec\" requires at least 2 arguments.\n", 1
        service, command = rest[0], rest[1:]
        if service not in project.services():
            return "", f"no such service: {service}\n", 1
        if not project.containers_exist():
            return "", f"service \"{service}\" is not running\n", 1
        return project.exec_in(service, command)

    @staticmethod
    def _ps(project, quiet):
        if not project.containers_exist():
            return "" if quiet else PS_HEADER + "\n"
        lines = [] if quiet else [PS_HEADER]
        health = "" if quiet else project.health()
        for service, image in project.services().items():
            name = f"{project.container_prefix}{service}"
            lines.append(_container_id(name) if quiet else
                         f"{name:<25} {image:<40} \"/entrypoint.sh\"        {service:<9} 1 min    Up 1 min" + health)
        return "\n".join(lines) + "\n"

    @staticmethod
    def _down(project):
        """compose writes its progress to the terminal; without one the lines are plain."""
        if not project.containers_exist():
            return ""
        project.remove_containers()
        lines = []
        for service in reversed(list(project.services())):
            lines += [f" Container {project.container_prefix}{service}  Stopping", f" Container {project.container_prefix}{service}  Removed"]
        return "\n".join(lines) + "\n"

    def _compose_v1(self, args, project, faults):
        """docker-compose v1, installed only on a `compose_v1` host (its per-host bin dir): same verbs through the
        same daemon, but no `config --images` and its own pull error (`ERROR: …`, exit code 1)."""
        if args in (["--version"], ["version"], ["-v"]):
            return COMPOSE_V1_VERSION + "\n", "", 0
        if project is None:
            return "", ("ERROR: \n        Can't find a suitable configuration file in this directory or any\n"
                        "        parent. Are you in the right directory?\n"), 1
        words = [a for a in args if not a.startswith("-")]
        if words[:1] == ["config"]:
            if any(a not in ("-q", "--quiet") for a in args[1:]):
                return "", COMPOSE_V1_CONFIG_USAGE, 1
            return yaml.safe_dump({"services": {name: {"image": image} for name, image in project.services().items()},
                                   "version": "3.9"}, default_flow_style=False), "", 0
        if words[:1] == ["pull"]:
            error = self._daemon_registry_error(faults, "ghcr.io/bitwarden/")
            if error:
                return "", "".join(f"ERROR: for {service}  {error}\n" for service in project.services()) + f"ERROR: {error}\n", 1
            return "".join(f"Pulling {service} ... done\n" for service in project.services()), "", 0
        return self._compose(args, project, faults)

    @staticmethod
    def _daemon_registry_error(faults, image):
        """Why the daemon cannot fetch `image` from its registry, or None."""
        if image.startswith(CERTBOT_IMAGE):
            return DOCKER_HUB_ERROR if faults.get("docker_hub_unreachable") else None
        if faults.get("pull_fails"):
            return REGISTRY_ERROR
        if faults.get("daemon_registry_unreachable"):
            return DAEMON_REGISTRY_ERROR
        return None

    def _pull(self, project, faults):
        error = self._daemon_registry_error(faults, "ghcr.io/bitwarden/")
        if error:
            return "", f"Error response from daemon: {error}\n", PULL_FAILED_RC
        return "".join(f" {service} Pulled\n" for service in project.services()), "", 0

    def _pull_image(self, image, faults):
        """`docker pull` goes through the daemon (its proxy, mirrors); a pull by digest of an image already present
        fetches the manifest and nothing else."""
        error = self._daemon_registry_error(faults, image)
        if error:
            return "", f"Error response from daemon: {error}\n", 1
        if "@" in image:
            repo, tag = image.split("@", 1)
        else:
            repo, tag = image.rpartition(":")[::2] if ":" in image.rsplit("/", 1)[-1] else (image, "latest")
        return (f"{tag}: Pulling from {repo.split('/', 1)[-1]}\nDigest: sha256:{_digest(repo)}\n"
                f"Status: Image is up to date for {image}\n{image}\n"), "", 0

    @staticmethod
    def _image_inspect(images, project, faults):
        known = set(project.services().values()) if project is not None else set()
        extra = set(project.extra_images()) if project is not None else set()
        out, err, code = [], "", 0
        for image in (i for i in images if not i.startswith("-")):
            tagged = image if ":" in image.rsplit("/", 1)[-1] else image + ":latest"
            if image in extra or tagged.rsplit(":", 1)[0] in extra:
                pass
            elif faults.get("images_missing") or image not in known:
                err += f"Error response from daemon: No such image: {image}\n"
                code = 1
                continue
            repo = tagged.rsplit(":", 1)[0]
            out.append(json.dumps({"Id": f"sha256:{hashlib.sha256(tagged.encode()).hexdigest()}", "RepoTags": [tagged],
                                   "RepoDigests": [f"{repo}@sha256:{_digest(repo)}"]}))
        return ("[" + ",\n".join(out) + "]\n" if out else "[]\n"), err, code

    @staticmethod
    def _manifest_inspect(images, faults):
        """The CLI asks the registry itself: the shell's proxy, not the daemon's; no mirrors."""
        image = next((i for i in images if not i.startswith("-")), "")
        if image.startswith(CERTBOT_IMAGE) and faults.get("docker_hub_unreachable"):
            return "", DOCKER_HUB_ERROR + "\n", 1
        if not image.startswith(CERTBOT_IMAGE) and (faults.get("pull_fails") or faults.get("cli_registry_unreachable")):
            return "", REGISTRY_ERROR + "\n", 1
        return ('{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}\n'
                if image else ""), ("" if image else '"docker manifest inspect" requires at least 1 argument.\n'), (0 if image else 1)

    @staticmethod
    def _run(argv, project, faults):
        """The containers run.sh starts: setup (`-printenv`, `-update`) and certbot (`renew`, on ports 80 and 443)."""
        if project is not None and CERTBOT_IMAGE in argv:
            if not project.letsencrypt() and faults.get("docker_hub_unreachable"):
                return "", (f"Unable to find image '{CERTBOT_IMAGE}:latest' locally\n"
                            f"docker: Error response from daemon: {DOCKER_HUB_ERROR}\n"), 125
            return ("\n- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -\n"
                    "No renewals were attempted.\n"
                    "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -\n",
                    "Saving debug log to /etc/letsencrypt/logs/letsencrypt.log\n", 0)
        if project is None or not hasattr(project, "setup"):
            return "", "bwsim docker stand-in: only the bitwarden setup container can be run\n", 125
        return project.setup(argv)

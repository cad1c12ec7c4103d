"""Bitwarden Lite instances: one container set up by docker-compose.yml and settings.env (contract 6.3, 5).

Upstream (bitwarden/self-host): `bitwarden-lite/docker-compose.yml` (service `bitwarden`, `env_file: settings.env`,
named volumes), `bitwarden-lite/settings.env` (the template admins fill in), `bitwarden-lite/Dockerfile` (image ENV),
`bitwarden-lite/entrypoint.sh` (BW_* -> globalSettings__*), `bitwarden-lite/hbs/nginx-config.hbs` (`/alive`),
`CommonMarketplace/files/opt/bitwarden/install-lite.sh` (layout, settings.env mode 0600, `docker compose up -d`).
There is no bitwarden.sh and no HEALTHCHECK; everything else (routes, cloud, settings binding) is the standard server's.
"""

import os
import shutil
import time

from . import envfile
from .httpserver import text_response
from .instance import Instance
from .layout import _write, lay_out_data

# The compose file of bitwarden-lite/docker-compose.yml (the MariaDB example the template starts with).
COMPOSE_YML = """\
---

services:
  bitwarden:
    depends_on:
      - db
    env_file:
      - settings.env
    image: ${{REGISTRY:-ghcr.io/bitwarden}}/lite:${{TAG:-{version}}}
    restart: always
    ports:
      - "80:8080"
      - "443:8443"
    volumes:
      - bitwarden:/etc/bitwarden
      - logs:/var/log/bitwarden

  # MariaDB Example
  db:
    environment:
      MARIADB_USER: "bitwarden"
      MARIADB_PASSWORD: "{db_password}"
      MARIADB_DATABASE: "bitwarden_vault"
      MARIADB_RANDOM_ROOT_PASSWORD: "true"
    image: mariadb:10
    restart: always
    volumes:
      - data:/var/lib/mysql

volumes:
  bitwarden:
  logs:
  data:
"""

EF_UPSERT_FAILED = (
    "System.InvalidOperationException: The entity type 'OrganizationSponsorship' was not found. Ensure that the entity "
    "type has been added to the model.\n"
    "   at Microsoft.EntityFrameworkCore.DbContext.UpdateRange(IEnumerable`1 entities)\n"
    "   at Bit.Infrastructure.EntityFramework.Repositories.OrganizationSponsorshipRepository.ReplaceManyAsync("
    "IEnumerable`1 organizationSponsorships)\n"
    "   at Bit.Infrastructure.EntityFramework.Repositories.OrganizationSponsorshipRepository.UpsertManyAsync("
    "IEnumerable`1 organizationSponsorships)\n"
    "   at Bit.Core.OrganizationFeatures.OrganizationSponsorships.FamiliesForEnterprise.SelfHosted."
    "SelfHostedSyncSponsorshipsCommand.SyncOrganization(Guid organizationId, Guid cloudOrganizationId, "
    "OrganizationConnection billingSyncConnection)\n"
    "   at Bit.Api.Jobs.SelfHostedSponsorshipSyncJob.ExecuteJobAsync(IJobExecutionContext context)")

# ENV of bitwarden-lite/Dockerfile that the settings binding reads (the container starts with these).
IMAGE_ENV = {
    "ASPNETCORE_ENVIRONMENT": "Production",
    "globalSettings__selfHosted": "true",
    "globalSettings__liteDeployment": "true",
    "globalSettings__pushRelayBaseUri": "https://push.bitwarden.com",
    "globalSettings__baseServiceUri__internalIdentity": "http://localhost:5005",
    "globalSettings__licenseDirectory": "/etc/bitwarden/licenses",
    "globalSettings__logDirectoryByProject": "false",
    "globalSettings__logRollBySizeLimit": "1073741824",
}

# nginx's default SSI time format, which `return 200 $date_gmt;` uses outside SSI (ngx_http_ssi_filter_module.c);
# the image is Alpine (musl), whose gmtime names the zone UTC. nginx formats in the C locale.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_gmt(now=None):
    """`$date_gmt` as the Lite image's nginx prints it, e.g. `Sunday, 29-Nov-2026 13:24:35 UTC`."""
    tm = time.gmtime(now)
    fields = (_DAYS[tm.tm_wday], tm.tm_mday, _MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec)
    return "%s, %02d-%s-%04d %02d:%02d:%02d UTC" % fields


def settings_env(url, installation_id, installation_key, db_password):
    """settings.env as an admin fills in the upstream template: comments kept, some values quoted, one value with a
    trailing comment, a $-reference, the vault URL set by hand (the simulated server is not on port 443)."""
    domain = url.split("://", 1)[1].split("/")[0].split(":")[0]
    return (
        "#####################\n"
        "# Required Settings #\n"
        "#####################\n"
        "\n"
        "# Server hostname\n"
        f"BW_DOMAIN={domain}\n"
        "\n"
        "# Database\n"
        "# Available providers are sqlserver, postgresql, mysql/mariadb, or sqlite\n"
        "BW_DB_PROVIDER=mysql\n"
        "BW_DB_SERVER=db\n"
        "BW_DB_DATABASE=bitwarden_vault\n"
        "BW_DB_USERNAME=bitwarden   # MARIADB_USER in docker-compose.yml\n"
        f'BW_DB_PASSWORD="{db_password}"\n'
        "\n"
        "# Installation information\n"
        "# Get your ID and key from https://bitwarden.com/host/\n"
        f"BW_INSTALLATION_ID={installation_id}\n"
        f"BW_INSTALLATION_KEY='{installation_key}'\n"
        "\n"
        "#####################\n"
        "# Optional Settings #\n"
        "#####################\n"
        "# Learn more here: https://bitwarden.com/help/environment-variables/\n"
        "\n"
        "# Webserver ports\n"
        "#BW_PORT_HTTP=8080\n"
        "#BW_PORT_HTTPS=8443\n"
        "\n"
        "# Mail\n"
        "globalSettings__mail__replyToEmail=noreply@$BW_DOMAIN\n"
        "#globalSettings__mail__smtp__host=smtphost.example.com\n"
        "\n"
        "# Other\n"
        "#globalSettings__disableUserRegistration=false\n"
        f'globalSettings__baseServiceUri__vault="{url}"\n'
    )


def entrypoint_env(env):
    """What bitwarden-lite/entrypoint.sh exports before the apps start (the parts the simulator reads)."""
    env = dict(env)
    env["globalSettings__baseServiceUri__vault"] = (env.get("globalSettings__baseServiceUri__vault")
                                                    or "https://" + (env.get("BW_DOMAIN") or "localhost"))
    # Unconditionally: a globalSettings__installation__id/key in settings.env is overwritten (contract 6.3).
    env["globalSettings__installation__id"] = env.get("BW_INSTALLATION_ID", "")
    env["globalSettings__installation__key"] = env.get("BW_INSTALLATION_KEY", "")
    return env


class LitePaths:
    """The compose dir (DIR/<name>/: docker-compose.yml, settings.env) and the named volumes docker keeps elsewhere
    (DIR/docker-volumes/<project>_<volume>/_data, like /var/lib/docker/volumes)."""

    def __init__(self, root, compose_name="docker-compose.yml"):
        self.root = root
        self.docker_dir = root  # the compose project dir
        self.compose_file = os.path.join(root, compose_name)
        self.env_file = os.path.join(root, "settings.env")
        volumes = os.path.join(os.path.dirname(root), "docker-volumes")
        project = os.path.basename(root)
        self.volumes = volumes
        self.mountpoints = {f"{project}_{volume}": os.path.join(volumes, f"{project}_{volume}", "_data")
                            for volume in ("bitwarden", "logs", "data")}
        self.license_dir = os.path.join(volumes, f"{project}_bitwarden", "_data", "licenses", "organization")
        # globalSettings__logDirectory's default /etc/bitwarden/logs, in the `bitwarden` volume
        self.api_log_root = os.path.join(volumes, f"{project}_bitwarden", "_data", "logs")

    def license_file(self, org_id):
        return os.path.join(self.license_dir, f"{org_id}.json")


class LiteInstance(Instance):
    """A Bitwarden Lite installation: same server, own layout, applied only by `docker compose up -d`."""

    deployment = "lite"
    healthcheck = False  # neither the Lite image nor the template's MariaDB service has one

    def lay_out(self, org_license):
        root = os.path.join(self.sim.directory, self.name)
        if os.path.isdir(root):
            shutil.rmtree(root)
        paths = LitePaths(root, self.spec["compose_file"])
        db_password = envfile.random_string(24)
        _write(paths.compose_file, COMPOSE_YML.format(version=self.spec["version"], db_password=db_password), 0o644)
        _write(paths.env_file, settings_env(self.url, self.installation_id, self.installation_key, db_password), 0o600)
        lay_out_data(paths, self.organization_id, org_license)
        os.chmod(paths.volumes, 0o700)  # /var/lib/docker is root's alone
        return paths

    def volume_mountpoint(self, name):
        """`docker volume inspect` of this project's named volumes."""
        return self.paths.mountpoints.get(name)

    @property
    def container_prefix(self):
        """No container_name in the Lite compose file: compose names containers <project>-<service>-1."""
        return os.path.basename(self.paths.root) + "-"

    def compose_files(self):
        return [self.paths.compose_file]

    def read_environment(self):
        """The container's environment as compose creates it: the image ENV, then settings.env (env_file)."""
        env = dict(IMAGE_ENV)
        try:
            with open(self.paths.env_file, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError as exc:
            path = self.paths.env_file
            raise envfile.EnvFileError(f"env file {path} not found: stat {path}: no such file or directory") from exc
        try:
            env.update(envfile.parse_compose_env(text))
        except envfile.EnvFileError as exc:
            raise envfile.EnvFileError(f"failed to read {self.paths.env_file}: {exc}") from exc
        return env

    def bind_settings(self, env):
        return super().bind_settings(entrypoint_env(env))

    def upsert_sponsorships(self):
        """On every provider but SQL Server the Entity Framework repository runs: its ReplaceManyAsync hands Core
        entities to DbContext.UpdateRange, which EF refuses (src/Infrastructure.EntityFramework/Repositories/
        OrganizationSponsorshipRepository.cs; contract 11). lastSyncDate stays null."""
        provider = ((self.started_env or {}).get("BW_DB_PROVIDER") or "").strip().lower()
        if provider in ("", "sqlserver"):
            return super().upsert_sponsorships()
        return EF_UPSERT_FAILED

    def run_script_command(self, command, user):
        """A Lite host has no bitwarden.sh (what bash says when asked to run it)."""
        return "", f"bash: {self.paths.root}/bitwarden.sh: No such file or directory\n", 127

    def setup(self, argv):
        """Lite has no setup container: the stand-in refuses `docker run` for it as for any other image."""
        return "", "bwsim docker stand-in: only the bitwarden setup container can be run\n", 125

    @staticmethod
    def _nginx_alive(_request, _params):
        return text_response(200, date_gmt())

"""A Bitwarden Lite compose directory: docker-compose.yml and settings.env as an admin fills in the upstream templates.

self-host `bitwarden-lite/docker-compose.yml` and `bitwarden-lite/settings.env` (contract 6.3), with fresh random
secrets per call, and what admins add: quoted values, comments after values, variables of their own.
"""

from __future__ import annotations

import os
import secrets
import string
import uuid

_ALNUM = string.ascii_letters + string.digits

COMPOSE_YML = """\
---

services:
  bitwarden:
    depends_on:
      - db
    env_file:
      - settings.env
    image: ${REGISTRY:-ghcr.io/bitwarden}/lite:${TAG:-2026.8.0}
    restart: always
    ports:
      - "80:8080"
      - "443:8443"
    volumes:
      - bitwarden:/etc/bitwarden
      - logs:/var/log/bitwarden

  db:
    environment:
      MARIADB_USER: "bitwarden"
      MARIADB_PASSWORD: "super_strong_password"
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


def _random(length):
    return "".join(secrets.choice(_ALNUM) for dummy in range(length))


def lite_settings(installation_id=None, installation_key=None, extra=""):
    """Return (text, secret values): the upstream template filled in, plus ``extra`` lines at the end."""
    db_password = _random(24)
    installation_id = str(uuid.uuid4()) if installation_id is None else installation_id
    installation_key = _random(20) if installation_key is None else installation_key
    text = (
        "#####################\n"
        "# Required Settings #\n"
        "#####################\n"
        "\n"
        "# Server hostname\n"
        "BW_DOMAIN=vault.example.com\n"
        "\n"
        "# Database\n"
        "# Available providers are sqlserver, postgresql, mysql/mariadb, or sqlite\n"
        "BW_DB_PROVIDER=mysql\n"
        "BW_DB_SERVER=db\n"
        "BW_DB_DATABASE='bitwarden_vault'\n"
        "BW_DB_USERNAME=bitwarden   # the MariaDB user of docker-compose.yml\n"
        'BW_DB_PASSWORD="%s"\n'
        "\n"
        "# Installation information\n"
        "# Get your ID and key from https://bitwarden.com/host/\n"
        "BW_INSTALLATION_ID=%s\n"
        'BW_INSTALLATION_KEY="%s"\n'
        "\n"
        "#####################\n"
        "# Optional Settings #\n"
        "#####################\n"
        "# Learn more here: https://bitwarden.com/help/environment-variables/\n"
        "\n"
        "#BW_ENABLE_SSL=true\n"
        "\n"
        "# Mail\n"
        "globalSettings__mail__replyToEmail=noreply@$BW_DOMAIN\n"
        "#globalSettings__mail__smtp__host=smtphost.example.com\n"
        "#globalSettings__enableCloudCommunication=false\n"
        "\n"
        "# Other\n"
        "globalSettings__disableUserRegistration=\"true\"\n"
        "SITE_NOTE=edge office 3\n"
        % (db_password, installation_id, installation_key)
    ) + extra
    secret_values = [db_password] + [value for value in (installation_key, installation_id) if value.strip("0-x")]
    return text, secret_values


class LiteInstall:
    """A compose dir under ``root``: docker-compose.yml (0644) and settings.env (0600, like install-lite.sh)."""

    def __init__(self, root, settings_text=None, mode=0o600, **settings):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.compose = root / "docker-compose.yml"
        self.compose.write_text(COMPOSE_YML, encoding="utf-8")
        self.env = root / "settings.env"
        self.secrets = []
        if settings_text is None:
            settings_text, self.secrets = lite_settings(**settings)
        self.env.write_bytes(settings_text.encode("utf-8"))
        self.env.chmod(mode)

    def text(self):
        return self.env.read_bytes().decode("utf-8")

    def snapshot(self):
        """Everything a run must not touch when it changes nothing: bytes, mode, owner, mtime, sibling files."""
        stat = self.env.stat()
        return (self.env.read_bytes(), stat.st_mode, stat.st_uid, stat.st_gid, stat.st_mtime_ns, sorted(os.listdir(self.root)))

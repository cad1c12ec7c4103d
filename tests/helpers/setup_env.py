"""A global.override.env as Bitwarden Setup writes it (contract 6.2), with fresh random secrets per call."""

from __future__ import annotations

import os
import secrets
import string
import uuid

_ALNUM = string.ascii_letters + string.digits


def _random(length):
    return "".join(secrets.choice(_ALNUM) for dummy in range(length))


def setup_env(region="US", push_notifications=True, installation_id=None):
    """Return (text, secret values) for an install: every key of contract 6.2, in Setup's order, LF, no comments."""
    sql_password = _random(32)
    values = {
        "cert_password": _random(32),
        "internal_identity_key": _random(64),
        "oidc_key": _random(64),
        "duo_akey": _random(64),
        "installation_id": installation_id if installation_id is not None else str(uuid.uuid4()),
        "installation_key": _random(20),
    }
    lines = [
        "globalSettings__baseServiceUri__vault=https://vault.example.com",
        "globalSettings__baseServiceUri__cloudRegion=%s" % region,
        'globalSettings__sqlServer__connectionString="Data Source=tcp:mssql,1433;Initial Catalog=vault;'
        'Persist Security Info=False;User ID=sa;Password=%s;Encrypt=True;TrustServerCertificate=True"' % sql_password,
        "globalSettings__sqlServer__migrationExecutionTimeoutSeconds=300",
        "globalSettings__identityServer__certificatePassword=%s" % values["cert_password"],
        "globalSettings__internalIdentityKey=%s" % values["internal_identity_key"],
        "globalSettings__oidcIdentityClientKey=%s" % values["oidc_key"],
        "globalSettings__duo__aKey=%s" % values["duo_akey"],
        "globalSettings__installation__id=%s" % values["installation_id"],
        "globalSettings__installation__key=%s" % values["installation_key"],
        "globalSettings__yubico__clientId=REPLACE",
        "globalSettings__yubico__key=REPLACE",
        "globalSettings__mail__replyToEmail=no-reply@vault.example.com",
        "globalSettings__mail__smtp__host=REPLACE",
        "globalSettings__mail__smtp__port=587",
        "globalSettings__mail__smtp__ssl=false",
        "globalSettings__mail__smtp__username=REPLACE",
        "globalSettings__mail__smtp__password=REPLACE",
        "globalSettings__disableUserRegistration=false",
        "globalSettings__hibpApiKey=REPLACE",
        "adminSettings__admins=",
    ]
    if not push_notifications:
        lines.append("globalSettings__pushRelayBaseUri=REPLACE")
    secret_values = [sql_password] + [value for name, value in values.items() if name != "installation_id" or installation_id is None]
    return "\n".join(lines) + "\n", secret_values


def config_yml(push_notifications=True):
    """The bits of bwdata/config.yml the module reads, around lines it must ignore."""
    return (
        "# Learn more here: https://bitwarden.com/help/install-on-premise-linux/#configure-your-installation\n"
        "url: https://vault.example.com\n"
        "generate_compose_config: true\n"
        "# Enable push notifications through Bitwarden's push relay.\n"
        "push_notifications: %s\n"
        "database_docker_volume: false\n" % ("true" if push_notifications else "false")
    )


class Install:
    """A bwdata directory under ``root`` with config.yml and a Setup-written env file (mode 0600)."""

    def __init__(self, root, env_text=None, push_notifications=True):
        self.bwdata = root / "bwdata"
        (self.bwdata / "env").mkdir(parents=True)
        self.env = self.bwdata / "env" / "global.override.env"
        self.secrets = []
        if env_text is None:
            env_text, self.secrets = setup_env(push_notifications=push_notifications)
        self.write_env(env_text)
        (self.bwdata / "config.yml").write_text(config_yml(push_notifications), encoding="utf-8")

    def write_env(self, text):
        self.env.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        self.env.chmod(0o600)

    def text(self):
        return self.env.read_bytes().decode("utf-8")

    def snapshot(self):
        """Everything a run must not touch when it changes nothing: bytes, mode, owner, mtime, sibling files."""
        stat = self.env.stat()
        return (self.env.read_bytes(), stat.st_mode, stat.st_uid, stat.st_gid, stat.st_mtime_ns,
                sorted(os.listdir(self.env.parent)))

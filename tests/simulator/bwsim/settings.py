"""GlobalSettings as the api/identity containers bind them at start-up (contract 6.1)."""

import uuid

# bwdata/docker/global.env: loaded before uid.env and global.override.env, so the override file wins.
GLOBAL_ENV = {
    "ASPNETCORE_ENVIRONMENT": "Production",
    "globalSettings__selfHosted": "true",
    "globalSettings__baseServiceUri__vault": "http://localhost",
    "globalSettings__pushRelayBaseUri": "https://push.bitwarden.com",
}
DEFAULT_IDENTITY_URI = "https://identity.bitwarden.com"
DEFAULT_API_URI = "https://api.bitwarden.com"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"


class StartupError(Exception):
    """The containers start but the application throws while starting (message as logged)."""


def _config(env):
    """Environment -> case-insensitive configuration keys (a__b -> a:b); a later key wins."""
    config = {}
    for key, value in env.items():
        path = key.replace("__", ":")
        config[path.lower()] = (path, value)
    return config


def _bool(config, path, default):
    entry = config.get(path.lower())
    if entry is None:
        return default
    text = entry[1].strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise StartupError(f"Failed to convert configuration value at '{entry[0]}' to type 'System.Boolean'.")


def _str(config, path, default=None):
    entry = config.get(path.lower())
    return default if entry is None else entry[1]


def has_value(value):
    """CoreHelpers.SettingHasValue: empty, SECRET and REPLACE count as unset."""
    return bool(value) and value.strip().lower() not in ("secret", "replace")


def effective_settings(env):
    """Bind the settings the simulator uses from the containers' environment; raises StartupError where the real start-up fails."""
    config = _config(env)
    installation_id = _str(config, "globalSettings:installation:id", "")
    try:
        parsed_id = str(uuid.UUID(installation_id.strip())) if installation_id.strip() else ZERO_GUID
    except ValueError as exc:
        raise StartupError(
            f"Failed to convert configuration value at '{config['globalsettings:installation:id'][0]}' to type 'System.Guid'."
        ) from exc
    settings = {
        "selfHosted": _bool(config, "globalSettings:selfHosted", False),
        "enableCloudCommunication": _bool(config, "globalSettings:enableCloudCommunication", False),
        "disableUserRegistration": _bool(config, "globalSettings:disableUserRegistration", False),
        "cloudRegion": _str(config, "globalSettings:baseServiceUri:cloudRegion"),
        "vault": _str(config, "globalSettings:baseServiceUri:vault"),
        "installationId": parsed_id,
        "installationKey": _str(config, "globalSettings:installation:key", ""),
        "identityUri": _str(config, "globalSettings:installation:identityUri") or DEFAULT_IDENTITY_URI,
        "apiUri": _str(config, "globalSettings:installation:apiUri") or DEFAULT_API_URI,
        "pushRelayBaseUri": _str(config, "globalSettings:pushRelayBaseUri"),
    }
    settings["pushRelayEnabled"] = has_value(settings["pushRelayBaseUri"]) and has_value(settings["installationKey"])
    if settings["selfHosted"] and parsed_id == ZERO_GUID:
        raise StartupError("Installation Id must be set for self-hosted installations.")
    return settings


def public_settings(settings):
    """The settings as the control API shows them (without the installation key)."""
    return {key: value for key, value in settings.items() if key != "installationKey"}

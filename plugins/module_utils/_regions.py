# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bitwarden cloud regions and how the server reads the cloud communication settings.

This is for internal selfhost.bitwarden collection use only: names and behaviour may change without notice.
"""

from __future__ import annotations

ENABLE = "globalSettings__enableCloudCommunication"
CLOUD_REGION = "globalSettings__baseServiceUri__cloudRegion"
IDENTITY_URI = "globalSettings__installation__identityUri"
API_URI = "globalSettings__installation__apiUri"
PUSH_RELAY = "globalSettings__pushRelayBaseUri"

# Order in which missing keys are appended to the env file.
MANAGED_KEYS = (ENABLE, CLOUD_REGION, IDENTITY_URI, API_URI, PUSH_RELAY)

# contract 6.1; the EU push relay is documented on the help page only.
REGIONS = {
    "US": {
        CLOUD_REGION: "US",
        IDENTITY_URI: "https://identity.bitwarden.com",
        API_URI: "https://api.bitwarden.com",
        PUSH_RELAY: "https://push.bitwarden.com",
    },
    "EU": {
        CLOUD_REGION: "EU",
        IDENTITY_URI: "https://identity.bitwarden.eu",
        API_URI: "https://api.bitwarden.eu",
        PUSH_RELAY: "https://push.bitwarden.eu",
    },
}

# Where an installation id and key are issued (Setup's prompt names the US page; the same page issues EU ids).
HOST_PAGES = {
    "US": "https://bitwarden.com/host (data region US)",
    "EU": "https://bitwarden.com/host (data region EU)",
}


def cloud_endpoints(region):
    """The identity and API base URIs the server calls for billing and license sync in ``region`` (contract 3.2, 6.1).

    The one list of billing sync egress: the preflight check probes it and the firewall guide's egress list must equal it.
    """
    return {"identity": REGIONS[region][IDENTITY_URI], "api": REGIONS[region][API_URI]}


# CoreHelpers.SettingHasValue: these values mean "not set", which switches the push relay off.
PUSH_RELAY_OFF_VALUES = ("", "secret", "replace")
PUSH_RELAY_OFF = "REPLACE"  # what Setup writes when config.yml has push_notifications: false

# What the server uses when a key is absent from global.override.env: the GlobalSettings defaults, and for the push
# relay the value docker/global.env sets. cloudRegion has none.
_ABSENT = {
    ENABLE: "false",
    CLOUD_REGION: None,
    IDENTITY_URI: REGIONS["US"][IDENTITY_URI],
    API_URI: REGIONS["US"][API_URI],
    PUSH_RELAY: REGIONS["US"][PUSH_RELAY],
}

_EMPTY_MEANS_ABSENT = (IDENTITY_URI, API_URI)  # InstallationSettings falls back to the US URI when blank


def push_relay_is_off(value):
    """True if the push relay setting value (None when absent) leaves the relay switched off."""
    return value is not None and value.strip().lower() in PUSH_RELAY_OFF_VALUES


def effective(key, value):
    """The value the server ends up with for a managed key, given its env file value (None when absent)."""
    if value is None or (value == "" and key in _EMPTY_MEANS_ABSENT):
        return _ABSENT[key]
    if key == ENABLE:
        return value.strip().lower()  # the configuration binder parses booleans case-insensitively
    if key == PUSH_RELAY and push_relay_is_off(value):
        return ""
    return value


def same_effect(key, old, new):
    """True if writing ``new`` instead of ``old`` would not change what the server does."""
    return effective(key, old) == effective(key, new)


def desired_settings(region, enabled, push_relay_off):
    """The managed keys and the values they must have."""
    settings = {ENABLE: "true" if enabled else "false"}
    settings.update(REGIONS[region])
    if push_relay_off:
        settings[PUSH_RELAY] = PUSH_RELAY_OFF
    return settings

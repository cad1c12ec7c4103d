"""mask_secrets: what the restart failure message may quote from stderr (issue 22 "Done when")."""

from __future__ import annotations

import pytest

from ansible_collections.selfhost.bitwarden.plugins.filter.mask_secrets import mask_secrets

KEY = "k3yABCdefGHIjkl9mnop"  # an installation key: 20 letters and digits


@pytest.mark.parametrize("text, secret", [
    ('failed to read settings.env: BW_DB_PASSWORD="correct horse battery staple"', "horse battery staple"),
    ("BW_DB_PASSWORD='correct horse battery staple' is wrong", "horse battery staple"),
    ('globalSettings__installation__key = "two words"', "two words"),
    ("failed to read /opt/bitwarden/settings.env: line 12: unterminated quoted value 'one two three", "one two three"),
    ("line 3: unexpected character \"!\" in variable name \"%s!\"" % KEY, KEY),
    ("the installation key %s was refused" % KEY, KEY),
    ("token: %s" % KEY, KEY),
])
def test_secrets_in_stderr_are_masked(text, secret):
    masked = mask_secrets(text)
    assert secret not in masked and "********" in masked, masked


def test_given_secrets_and_lines_joined_with_slashes():
    text = "Error / client secret s3cr3t-value here / line 2: unterminated quoted value \"abc def / Exit"
    masked = mask_secrets(text, ["s3cr3t-value", ""])
    assert "s3cr3t-value" not in masked and "abc def" not in masked and masked.endswith(" / Exit")


def test_what_says_why_stays_readable():
    text = ('Error response from daemon: Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 127.0.0.53:53: no such host / '
            "Container bitwarden-api  Recreated / globalSettings__enableCloudCommunication / "
            "open /opt/bitwarden/bwdata/docker/docker-compose.yml: no such file or directory")
    assert mask_secrets(text) == text

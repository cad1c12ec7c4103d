"""The metrics parse with prometheus-client's exposition-format parser, follow the naming conventions, carry no secret."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.bitwarden.plugins.filter.prometheus_metrics import prometheus_metrics
from prometheus_client.parser import text_string_to_metric_families

ORG = "2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11"
ROWS = [
    {"host": "bw-1", "wanted_region": "EU", "organization": ORG, "version": "2026.8.0", "region": "EU",
     "cloud_communication": True, "billing_sync": "enabled", "last_license_sync": "2026-11-22T10:00:00.1234567+00:00",
     "license_expiration_with_grace": "2027-01-18T10:00:00Z", "license_expiration_without_grace": "2026-11-19T10:00:00Z",
     "license_sync_stale_after_hours": 216, "sponsorship_sync": "pending", "sponsorship_last_sync": None,
     "sponsorship_last_seen": "2026-11-29T10:00:00+00:00", "drift": ["never synced", "x"], "error": None,
     "read_at": 1764410000, "deployment": "lite"},
    {"host": 'odd"host\\name', "wanted_region": "US", "organization": "", "error": "could not be read: boom\nline 2",
     "drift": [], "read_at": 1764410001},
]


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_parses_with_the_real_parser_and_has_every_family():
    found = samples(prometheus_metrics(ROWS))
    ok = {"host": "bw-1", "region": "EU", "organization": ORG}
    assert found["selfhost_bitwarden_info"] == [(dict(ok, version="2026.8.0", cloud_region="EU", deployment="lite"), 1.0)]
    assert (ok, 1.0) in found["selfhost_bitwarden_cloud_communication_enabled"]
    assert (ok, 1.0) in found["selfhost_bitwarden_billing_sync_enabled"]
    assert (ok, 1795341600.123456) in found["selfhost_bitwarden_license_last_sync_timestamp_seconds"]
    # both expiry dates, each under the name of what it carries
    assert (ok, 1800266400.0) in found["selfhost_bitwarden_license_expiry_with_grace_timestamp_seconds"]
    assert (ok, 1795082400.0) in found["selfhost_bitwarden_license_expiry_without_grace_timestamp_seconds"]
    assert "selfhost_bitwarden_license_expiry_timestamp_seconds" not in found
    assert (ok, 216 * 3600.0) in found["selfhost_bitwarden_license_sync_stale_after_seconds"]
    assert (ok, 1795946400.0) in found["selfhost_bitwarden_sponsorship_sync_last_seen_timestamp_seconds"]
    assert (ok, 0.0) in found["selfhost_bitwarden_sponsorship_last_sync_timestamp_seconds"]
    assert (ok, 2.0) in found["selfhost_bitwarden_drift"]
    assert (dict(ok, state="pending"), 1.0) in found["selfhost_bitwarden_sponsorship_sync_state"]
    assert (dict(ok, state="synced"), 0.0) in found["selfhost_bitwarden_sponsorship_sync_state"]
    odd = {"host": 'odd"host\\name', "region": "US", "organization": ""}
    assert found["selfhost_bitwarden_read_error"] == [(ok, 0.0), (odd, 1.0)] or \
        sorted(found["selfhost_bitwarden_read_error"], key=lambda s: s[1]) == [(ok, 0.0), (odd, 1.0)]
    # an unreadable host has only the read error and the read time
    assert all(labels["host"] == "bw-1" for name, values in found.items() for labels, value in values
               if name not in ("selfhost_bitwarden_read_error", "selfhost_bitwarden_status_timestamp_seconds"))


def test_names_follow_the_conventions():
    for family in text_string_to_metric_families(prometheus_metrics(ROWS)):
        assert family.name.startswith("selfhost_bitwarden_")
        assert family.type == "gauge" and family.documentation
        if "timestamp" in family.name:
            assert family.name.endswith("_timestamp_seconds")


def test_no_error_text_or_secret_in_the_metrics():
    text = prometheus_metrics([dict(ROWS[0], billing_sync_token="SECRET-TOKEN", client_secret="SECRET-KEY"), ROWS[1]])
    assert "SECRET" not in text and "boom" not in text


def test_bad_input_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="prometheus_metrics"):
        prometheus_metrics("nope")

"""License expiry (GET /api/organizations/{id}/subscription), the /api/config version gate and the sponsorship sync job.

Upstream, checked at server v2026.8.0:
* src/Api/Billing/Controllers/OrganizationsController.cs GetSubscription: owner only (ViewSubscription), self-hosted
  branch reads the license file (LicensingService.ReadOrganizationLicenseAsync, JsonSerializer defaults: PascalCase);
* OrganizationSubscriptionResponseModel (src/Api/AdminConsole/Models/Response/Organizations/OrganizationResponseModel.cs):
  expiration = license Expires, expirationWithoutGracePeriod = the license's, else Expires - 60 days (Trial: Expires);
  a missing file is a 500 from v2025.12.1 (GetClaimsPrincipalFromLicense(null)), the org row's date before; the field
  expirationWithoutGracePeriod exists from v2023.5.0 (commit bfd3f85bb0);
* GET /api/config from v2022.10.0 (contract 8);
* src/Api/Jobs/JobsHostedService.cs + src/Core/Jobs/JobListener.cs: SelfHostedSponsorshipSyncJob registered at api start
  only with cloud communication on, first run start + 0-23 h, then every 24 h; "Starting/Finished job ..." lines with
  Constants.BypassFiltersEventId, which the file log replaces with the template's hash (Serilog.Extensions.Logging.File
  EventIdEnricher); the cloud is called only with local sponsorships (contract 4.1).
"""

import datetime
import json
import os
import re

import pytest

from bwsim import apilog
from synchelpers import api_log, enable_cloud, prepare, sync

JOB = "SelfHostedSponsorshipSyncJob"


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([
        {"name": "sub"}, {"name": "soon", "subscription_days": 20}, {"name": "old-file"}, {"name": "nolicense", "license": False},
        {"name": "nolicense-2025", "license": False, "version": "2025.11.0"}, {"name": "v2023-4", "version": "2023.4.0"},
        {"name": "v2022-9", "version": "2022.9.0"}, {"name": "v2022-10", "version": "2022.10.0"},
        {"name": "job-off"}, {"name": "job-none"}, {"name": "job-some", "sponsorships": 2},
        {"name": "job-badkey", "sponsorships": 1},
    ])


@pytest.fixture
def api(fleet, api_for, request):
    return api_for(fleet, request.node.get_closest_marker("instance").args[0])


def parse(text):
    """A DateTime as System.Text.Json writes it; a license claim's comes back without a kind (its time is UTC)."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def license_path(api):
    return os.path.join(api.state["install_dir"], "bwdata", "core", "licenses", "organization", f"{api.org}.json")


def subscription(api, who="owner"):
    return api.call("GET", f"/api/organizations/{api.org}/subscription", api.token(who))


@pytest.mark.instance("sub")
def test_subscription_from_license_file(api):
    response = subscription(api)
    assert response.status_code == 200
    body = response.json()
    with open(license_path(api), encoding="utf-8") as handle:
        lic = json.load(handle)
    assert body["object"] == "organizationSubscription"
    assert lic["Token"].count(".") == 2  # the cloud's JWT: the server shows its claims (v2025.12.1+)
    assert parse(body["expiration"]) == parse(lic["Expires"])
    assert parse(body["expirationWithoutGracePeriod"]) == parse(lic["ExpirationWithoutGracePeriod"])
    assert parse(body["expiration"]) - parse(body["expirationWithoutGracePeriod"]) == datetime.timedelta(days=60)
    days = (parse(body["expirationWithoutGracePeriod"]) - datetime.datetime.now(datetime.timezone.utc)).days
    assert days in (364, 365)
    assert subscription(api, "admin").status_code == 404  # ViewSubscription: owners only
    assert api.call("GET", f"/api/organizations/{api.org}/subscription").status_code == 401


@pytest.mark.instance("soon")
def test_subscription_days_shape_the_license_and_sync_keeps_them(api):
    body = subscription(api).json()
    days = (parse(body["expirationWithoutGracePeriod"]) - datetime.datetime.now(datetime.timezone.utc)).days
    assert days in (19, 20)
    enable_cloud(api)
    prepare(api)
    assert sync(api).status_code == 200
    again = subscription(api).json()
    assert (parse(again["expirationWithoutGracePeriod"]) - datetime.datetime.now(datetime.timezone.utc)).days in (19, 20)


@pytest.mark.instance("old-file")
def test_license_without_expiration_without_grace_period(api):
    """The response model computes it: Expires - 60 days, or Expires for a trial (contract 10 says null: wrong).
    A license file from before the cloud added the Token (the file's fields are read only without one)."""
    with open(license_path(api), encoding="utf-8") as handle:
        lic = json.load(handle)
    del lic["ExpirationWithoutGracePeriod"]
    del lic["Token"]
    with open(license_path(api), "w", encoding="utf-8") as handle:
        json.dump(lic, handle)
    body = subscription(api).json()
    assert parse(body["expiration"]) - parse(body["expirationWithoutGracePeriod"]) == datetime.timedelta(days=60)
    lic["Trial"] = True
    with open(license_path(api), "w", encoding="utf-8") as handle:
        json.dump(lic, handle)
    body = subscription(api).json()
    assert body["expiration"] == body["expirationWithoutGracePeriod"]


@pytest.mark.instance("nolicense")
def test_missing_license_file_is_a_500_since_2025_12_1(api):
    response = subscription(api)
    assert (response.status_code, response.json()["message"]) == (500, "An unhandled server error has occurred.")


@pytest.mark.instance("nolicense-2025")
def test_missing_license_file_before_2025_12_1(api):
    body = subscription(api).json()
    assert body["expiration"] is not None and body["expirationWithoutGracePeriod"] is None


@pytest.mark.instance("v2023-4")
def test_no_expiration_without_grace_period_before_2023_5(api):
    body = subscription(api).json()
    assert "expirationWithoutGracePeriod" not in body and body["expiration"]


@pytest.mark.instance("v2022-9")
def test_no_config_route_before_2022_10(api):
    assert api.call("GET", "/api/config").status_code == 404
    assert api.call("GET", "/api/version").json() == "2022.9.0"
    assert api.call("GET", "/api/organizations/connections/enabled", api.token()).status_code == 200


@pytest.mark.instance("v2022-10")
def test_config_route_from_2022_10(api):
    assert api.call("GET", "/api/config").json()["version"] == "2022.10.0"


@pytest.mark.instance("job-off")
def test_job_not_registered_with_cloud_communication_off(api):
    assert api.refresh()["sponsorship_job_due"] is None
    with pytest.raises(RuntimeError, match="not scheduled"):
        api.fleet.client.run_job(api.name, JOB)


@pytest.mark.instance("job-none")
def test_job_schedule_and_no_sponsorships(api):
    before = datetime.datetime.now().timestamp()
    enable_cloud(api)
    due = api.refresh()["sponsorship_job_due"]
    assert due is not None and before - 1 <= due <= before + 23 * 3600 + 60
    assert (due - before) % 3600 < 60 or (due - before) % 3600 > 3540  # whole hours after the start
    prepare(api)
    result = api.fleet.client.run_job(api.name, JOB)
    assert result["sponsorship_last_sync"] is None
    log = api_log(api)
    assert f'[INF] Starting job "{JOB}" at ' in log and f'[INF] Finished job "{JOB}" at ' in log
    # no request: the RequestId column is blank; the event id is the template's hash, not BypassFiltersEventId
    assert re.search(r"\+00:00 {15}\[INF\] Starting job \"%s\" at \d\d/\d\d/\d{4} \d\d:\d\d:\d\d\. \(%08x\)\n"
                     % (JOB, apilog.event_id(apilog.JOB_STARTING)), log)
    assert f"No existing sponsorships to sync for organization {api.org} (" in log
    assert api.refresh()["counters"]["cloud_calls"] == 0  # no sponsorships: the cloud is not called


@pytest.mark.instance("job-some")
def test_job_syncs_local_sponsorships(api):
    enable_cloud(api)
    prepare(api)
    status = f"/api/organization/sponsorship/{api.org}/sync-status"
    assert api.call("GET", status, api.tok).json()["lastSyncDate"] is None
    api.fleet.client.run_job(api.name, JOB)
    last = api.call("GET", status, api.tok).json()["lastSyncDate"]
    assert abs((parse(last) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 60
    assert api.refresh()["counters"]["cloud_calls"] == 2  # token (api.installation) + sync


@pytest.mark.instance("job-badkey")
def test_job_failure_is_logged_and_swallowed(api):
    enable_cloud(api)
    prepare(api)
    api.fleet.client.set_faults(api.name, {"wrong_billing_sync_token": True})
    api.fleet.client.run_job(api.name, JOB)
    log = api_log(api)
    assert 'is unsuccessful with status of BadRequest-"Bad Request": "Invalid Billing Sync Key\n"' in log
    assert '[ERR] Sponsorship sync for organization "job-badkey Org" Failed' in log
    assert f'Finished job "{JOB}"' in log
    assert api.call("GET", f"/api/organization/sponsorship/{api.org}/sync-status", api.tok).json()["lastSyncDate"] is None


@pytest.mark.instance("job-badkey")
def test_unknown_cloud_organization_logs_resource_not_found(api):
    """Contract 10: the cloud's NotFoundException text is replaced by the exception filter."""
    api.fleet.client.set_faults(api.name, {})
    with open(license_path(api), encoding="utf-8") as handle:
        lic = json.load(handle)
    assert lic["Id"] == api.state["cloud_organization_id"]
    api.tok = api.token()
    conn = api.call("GET", f"/api/organizations/connections/{api.org}/1", api.tok).json()
    conn["config"]["CloudOrganizationId"] = "6f1d2c1e-0000-4000-8000-000000000001"
    # the server takes the cloud org id from the license on every save: write a license of another cloud org
    lic["Id"] = "6f1d2c1e-0000-4000-8000-000000000001"
    with open(license_path(api), "w", encoding="utf-8") as handle:
        json.dump(lic, handle)
    body = api.connection_body()
    response = api.call("PUT", f"/api/organizations/connections/{conn['id']}", api.tok, json=body)
    assert response.status_code == 200, response.text
    assert sync(api).status_code == 400
    assert 'is unsuccessful with status of NotFound-"Not Found": "Resource not found.\n"' in api_log(api)
    assert "Organization not found." not in api_log(api)

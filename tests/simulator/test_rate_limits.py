"""The clouds' per-IP rate limits and the fleet key `egress`, and a renewal in the cloud.

Upstream (bitwarden/server src/Identity/appsettings.json, src/Api/appsettings.json, IpRateLimitOptions.GeneralRules;
contract 11): identity 5/s and 60/min for any request, `post:/connect/token` 10/min; api `get:/alive` 5/min, any GET
200/min. Over a limit: 429, Retry-After, `{"message": "Slow down! Too many requests. Try again in 1m.", ...}`
(src/Core/Utilities/CustomIpRateLimitMiddleware.cs). The server's own token request, when limited, fails its license
sync with the generic error and is logged as `Unsuccessful token response ... with status TooManyRequests-...`.
"""

import json
import os
import time

import pytest
import requests

from bwsim import cloud
from synchelpers import GENERIC, api_log, enable_cloud, prepare, sync

SLOW_DOWN = "Slow down! Too many requests. Try again in 1m."


@pytest.fixture(scope="module")
def fleet(module_fleet):
    # nat-1: twelve instances behind one address; solo: its own (the default).
    return module_fleet([{"name": "nat-%02d" % index, "egress": "nat-1"} for index in range(1, 13)]
                        + [{"name": "solo"}, {"name": "renewed", "subscription_days": 20}])


def installation_form(fleet, name):
    values = {}
    with open(os.path.join(fleet.install_dir(name), "bwdata", "env", "global.override.env"), encoding="utf-8") as handle:
        for line in handle:
            key, dummy, value = line.rstrip("\n").partition("=")
            values[key] = value
    return {"grant_type": "client_credentials", "scope": "api.licensing",
            "client_id": "installation." + values["globalSettings__installation__id"],
            "client_secret": values["globalSettings__installation__key"]}


def limited(fleet, region="US"):
    return fleet.client.clouds()[region]["rate_limits"]


def test_served_identity_limits_token_requests_per_egress(fleet):
    ca = str(fleet.dir / "ca.pem")
    identity = fleet.host_vars("solo")["billing_sync_preflight_endpoints"]["US"]["identity"]
    assert fleet.host_vars("nat-01")["billing_sync_preflight_endpoints"] == fleet.host_vars("nat-02")["billing_sync_preflight_endpoints"]
    assert fleet.host_vars("nat-01")["billing_sync_preflight_endpoints"]["US"]["identity"] != identity
    before = limited(fleet)["by_egress"].get("solo", {"rate_limited": 0})["rate_limited"]
    answers = []
    for dummy in range(11):
        answers.append(requests.post(identity + "/connect/token", data=installation_form(fleet, "solo"), verify=ca, timeout=10))
        time.sleep(0.25)  # under identity's 5 requests a second
    assert [answer.status_code for answer in answers[:10]] == [200] * 10
    assert answers[10].status_code == 429
    assert answers[10].json()["message"] == SLOW_DOWN
    assert 1 <= int(answers[10].headers["Retry-After"]) <= 60
    assert limited(fleet)["by_egress"]["solo"]["rate_limited"] == before + 1


def test_limiter_rules_windows_and_retry_after(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(cloud.time, "monotonic", lambda: clock[0])
    limiter = cloud.RateLimiter()
    # identity: five requests a second, whatever the route
    assert [limiter.admit("identity", "GET", "/alive", "a") for dummy in range(5)] == [None] * 5
    refused = limiter.admit("identity", "GET", "/alive", "a")
    assert refused.status == 429 and refused.body["message"] == "Slow down! Too many requests. Try again in 1s."
    assert refused.headers == {"Retry-After": "1"}
    assert limiter.admit("identity", "GET", "/alive", "b") is None  # per client address
    clock[0] += 1.0
    # the refused request did not count (StackBlockedRequests false); token requests: ten a minute
    for dummy in range(2):
        assert [limiter.admit("identity", "POST", "/connect/token", "a") for dummy in range(5)] == [None] * 5
        clock[0] += 1.0
    refused = limiter.admit("identity", "POST", "/connect/token", "a")
    assert refused.body["message"] == SLOW_DOWN and refused.headers == {"Retry-After": "58"}
    clock[0] += 57.5
    assert limiter.admit("identity", "POST", "/connect/token", "a").status == 429  # a sliding window: no reset at a boundary
    clock[0] += 0.5
    assert limiter.admit("identity", "POST", "/connect/token", "a") is None
    # api: GET /alive five a minute, other GETs 200 a minute; POSTs five a second
    assert [limiter.admit("api", "GET", "/alive", "a") for dummy in range(5)] == [None] * 5
    assert limiter.admit("api", "GET", "/alive", "a").status == 429
    assert limiter.admit("api", "GET", "/licenses/organization/x", "a") is None
    assert limiter.snapshot()["by_egress"]["a"]["rate_limited"] == 4


def test_served_api_alive_five_per_minute(fleet):
    ca = str(fleet.dir / "ca.pem")
    api = fleet.host_vars("renewed")["billing_sync_preflight_endpoints"]["US"]["api"]
    codes = [requests.get(api + "/alive", verify=ca, timeout=10).status_code for dummy in range(6)]
    assert codes == [200] * 5 + [429]


def test_servers_behind_one_egress_share_the_token_budget(fleet, api_for):
    apis = [api_for(fleet, "nat-%02d" % index) for index in range(1, 13)]
    for api in apis:
        enable_cloud(api)
        prepare(api)
    answers = []
    for api in apis:
        answers.append(sync(api))
        time.sleep(0.25)  # under identity's 5 requests a second: only the 10 a minute of the token route bind
    codes = [answer.status_code for answer in answers]
    # Ten token requests a minute per client IP: the eleventh server's sync fails as the real one does.
    assert codes[:10] == [200] * 10, [answer.text for answer in answers]
    assert codes[10:] == [400, 400] and answers[10].json()["message"] == GENERIC
    log = api_log(apis[10])
    assert "with status TooManyRequests-" in log and "Too Many Requests" in log
    assert "because an access token was unable to be obtained" in log
    assert fleet.instance("nat-11")["counters"]["cloud_rate_limited"] == 1
    assert limited(fleet)["by_egress"]["nat-1"]["rate_limited"] == 2
    # Another egress address has its own budget.
    solo = api_for(fleet, "solo")
    enable_cloud(solo)
    prepare(solo)
    assert fleet.instance("solo")["counters"]["cloud_rate_limited"] == 0


def test_renewal_reaches_the_server_only_through_a_sync(fleet, api_for):
    api = api_for(fleet, "renewed")
    path = os.path.join(fleet.install_dir("renewed"), "bwdata", "core", "licenses", "organization", api.org + ".json")
    with open(path, encoding="utf-8") as handle:
        before = json.load(handle)
    enable_cloud(api)
    prepare(api)
    assert sync(api).status_code == 200
    with open(path, encoding="utf-8") as handle:
        synced = json.load(handle)
    assert synced["ExpirationWithoutGracePeriod"] == before["ExpirationWithoutGracePeriod"]  # a sync alone renews nothing
    fleet.client.renew_subscription("renewed", days=365, seats=75)
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle)["Seats"] == before["Seats"]  # the server learns nothing by itself
    assert sync(api).status_code == 200
    with open(path, encoding="utf-8") as handle:
        renewed = json.load(handle)
    assert renewed["ExpirationWithoutGracePeriod"] > before["ExpirationWithoutGracePeriod"]
    assert renewed["ExpirationWithoutGracePeriod"][:4] == str(int(before["ExpirationWithoutGracePeriod"][:4]) + 1)
    assert renewed["Seats"] == 75

"""Plugin datasets against a real Envoy: ipControl's blocksDatasetId, accessControl's
assertParameterName/assertInDataset and basicAuth's usersDatasetId read static datasets; an expired
entry admits nothing; the app registry's document replaces a dataset at runtime, without a restart."""
import base64
import time

import pytest

from conftest import call
from harness.envoy import Envoy, static_cluster
from harness.registry_server import RegistryServer

REFRESH = 1

DATASETS = [
    {"id": "office", "name": "office networks", "type": "IP_WHITELIST_CIDR",
     "entries": [{"value": "203.0.113.0/24"}, {"value": "198.51.100.9", "expiredTime": "2020-01-01T00:00:00Z"}]},
    {"id": "tiers", "type": "PARAMETER_ACCESS", "entries": [{"value": "gold"}]},
    {"id": "staff", "type": "BASIC_AUTH_USERS", "entries": [{"value": "carol:pa55word"}]},
]

CONFIG = {
    "appRegistry": {"uri": "http://registry.internal/cagate/apps.json", "cluster": "registry",
                    "refreshSeconds": REFRESH, "timeoutMs": 1000},
    "datasets": DATASETS,
    "plugins": [
        {"name": "ips", "type": "ipControl",
         "data": {"type": "ALLOW", "resource": "XFF:-1", "items": [{"blocksDatasetId": "office"}]}},
        {"name": "tiered", "type": "accessControl",
         "data": {"parameters": {"tier": "Header:X-Tier"},
                  "rules": [{"name": "known", "assertParameterName": "tier", "assertInDataset": "tiers",
                             "ifFalse": "DENY"}]}},
        {"name": "basic", "type": "basicAuth", "data": {"usersDatasetId": "staff"}},
    ],
    "apis": [
        {"name": "ip", "method": "GET", "path": "/ip", "authType": "ANONYMOUS", "plugins": [{"plugin": "ips"}]},
        {"name": "tier", "method": "GET", "path": "/tier", "authType": "ANONYMOUS", "plugins": [{"plugin": "tiered"}]},
        {"name": "basic", "method": "GET", "path": "/basic", "authType": "ANONYMOUS", "plugins": [{"plugin": "basic"}]},
    ],
}


@pytest.fixture(scope="module")
def stack(backend):
    reg = RegistryServer({"apps": []}).start()
    with Envoy(CONFIG, backend.port, concurrency=2, extra_clusters=[static_cluster("registry", reg.port)]) as e:
        yield e, reg
    reg.stop()


def basic(user_pass):
    return {"authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


def test_ip_control_reads_a_dataset(stack):
    e, _ = stack
    ok = call(e.port, "GET", "/ip", {"x-forwarded-for": "203.0.113.77"})
    assert ok.status == 200, ok
    assert ok.json()["path"] == "/ip"
    for ip in ["192.0.2.1", "198.51.100.9"]:  # outside, and an expired entry
        r = call(e.port, "GET", "/ip", {"x-forwarded-for": ip})
        assert (r.status, r.code) == (403, "A403IP"), (ip, r)


def test_access_control_asserts_a_value_in_a_dataset(stack):
    e, _ = stack
    assert call(e.port, "GET", "/tier", {"x-tier": "gold"}).status == 200
    r = call(e.port, "GET", "/tier", {"x-tier": "bronze"})
    assert (r.status, r.code) == (403, "A403AC"), r
    assert call(e.port, "GET", "/tier").code == "A403AC"


def test_basic_auth_users_from_a_dataset(stack):
    e, _ = stack
    assert call(e.port, "GET", "/basic", basic("carol:pa55word")).status == 200
    r = call(e.port, "GET", "/basic", basic("carol:guess"))
    assert (r.status, r.code) == (401, "A401BA"), r
    assert r.header("www-authenticate")


def test_the_registry_replaces_a_dataset_at_runtime(stack):
    """A document with a new `tiers` admits `platinum` and no longer `gold`, on every worker, within
    refreshSeconds + 2 s; a document that changes a dataset's type is refused and the last good one kept."""
    e, reg = stack
    reg.publish({"apps": [], "datasets": [{"id": "tiers", "type": "PARAMETER_ACCESS", "entries": [{"value": "platinum"}]}]})
    deadline = time.time() + REFRESH + 2.0
    while True:
        codes = [(call(e.port, "GET", "/tier", {"x-tier": "platinum"}).status,
                  call(e.port, "GET", "/tier", {"x-tier": "gold"}).code) for _ in range(4)]
        if all(c == (200, "A403AC") for c in codes):
            break
        assert time.time() < deadline, codes
        time.sleep(0.1)
    reg.publish({"apps": [], "datasets": [{"id": "tiers", "type": "JWT_BLOCKING", "entries": [{"value": "gold"}]}]})
    time.sleep(REFRESH + 1.0)
    assert call(e.port, "GET", "/tier", {"x-tier": "platinum"}).status == 200, "the last good document stays"
    assert call(e.port, "GET", "/tier", {"x-tier": "gold"}).code == "A403AC"

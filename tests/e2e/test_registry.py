"""Apps and secrets at scale, against a real Envoy (--concurrency 2) and a small registry server: apps
published at runtime are admitted on every worker within refreshSeconds + 2 s, with no Envoy restart;
key rotation; expired pairs; grants from the registry; the last good document survives a registry that
fails or serves nonsense; a secret from the VM's environment."""
import re
import time

import pytest

from conftest import call
from harness.envoy import Envoy, static_cluster, wasm_filter
from harness.registry_server import RegistryServer
from harness.signer import sign

REFRESH = 1


def config(registry_port_unused=None):
    return {
        "appRegistry": {"uri": "http://registry.internal/cagate/apps.json", "cluster": "registry",
                        "refreshSeconds": REFRESH, "timeoutMs": 1000},
        "apps": [{"appId": 1, "appKey": "static-key", "appSecret": {"env": "CAGATE_STATIC_SECRET"}}],
        "apis": [
            {"name": "getOrder", "method": "GET", "path": "/orders/[id]",
             "authorizations": [{"appId": 1}]},
            {"name": "reports", "method": "GET", "path": "/reports", "authorizations": [{"appId": 1}]},
        ],
    }


def app(app_id, key, secret, keys=None):
    a = {"appId": app_id, "appKey": key, "appSecret": secret}
    if keys:
        a["keys"] = keys
    return a


def grant(app_id, api="getOrder"):
    return {"appId": app_id, "api": api, "stage": "RELEASE"}


@pytest.fixture(scope="module")
def stack(backend):
    reg = RegistryServer({"apps": [app(10001, "k1", "s1")], "authorizations": [grant(10001)]}).start()
    filt = wasm_filter(config(), vm_env={"CAGATE_STATIC_SECRET": "static-secret-from-env"})
    e = Envoy(None, backend.port, concurrency=2, http_filters=[filt], extra_clusters=[static_cluster("registry", reg.port)])
    with e:
        wait_for(e, "k1", "s1", 200)
        yield e, reg
    reg.stop()


def get(e, key, secret, path="/orders/1"):
    return call(e.port, "GET", path, sign("GET", path, key, secret))


def wait_for(e, key, secret, status, path="/orders/1", timeout=REFRESH + 2.0, code=None):
    """Polls until `rounds` consecutive calls (fresh connections, so both workers) answer `status`."""
    deadline = time.time() + timeout
    while True:
        results = [get(e, key, secret, path) for _ in range(6)]
        if all(r.status == status and (code is None or r.code == code) for r in results):
            return time.time()
        if time.time() > deadline:
            raise AssertionError(f"not {status} within {timeout}s: {[(r.status, r.code) for r in results]}")
        time.sleep(0.1)


def test_secret_from_the_vm_environment(stack):
    """A static app whose appSecret is {"env": NAME}: the secret reaches the filter from the VM's env."""
    e, _ = stack
    assert get(e, "static-key", "static-secret-from-env").status == 200
    assert get(e, "static-key", "wrong").code == "A403IS"


def test_new_app_is_admitted_on_every_worker_without_restart(stack):
    """An app absent at start gets A400IK; published, it is admitted within refreshSeconds + 2 s."""
    e, reg = stack
    assert get(e, "k2", "s2").code == "A400IK"
    reg.publish({"apps": [app(10001, "k1", "s1"), app(10002, "k2", "s2")],
                 "authorizations": [grant(10001), grant(10002)], "version": 20261204})
    start = time.time()
    done = wait_for(e, "k2", "s2", 200)
    assert done - start <= REFRESH + 2.0
    assert any(h.get("If-None-Match") or h.get("if-none-match") for h in reg.requests), "fetches are conditional"
    # The document's own version, what every Envoy that installed it shows (gauges reach Envoy at once).
    gauge = [l for l in e.stats().splitlines() if l.startswith("cagate_registry_version")]
    assert gauge and gauge[0].endswith(" 20261204"), gauge


def test_rotation_both_pairs_pass_then_only_the_new(stack):
    """During a rotation both key pairs pass; after it the old one gets A400IK."""
    e, reg = stack
    reg.publish({"apps": [app(10003, "old-key", "old-secret", keys=[{"appKey": "new-key", "appSecret": "new-secret"}])],
                 "authorizations": [grant(10003)]})
    wait_for(e, "new-key", "new-secret", 200)
    assert get(e, "old-key", "old-secret").status == 200
    reg.publish({"apps": [app(10003, "new-key", "new-secret")], "authorizations": [grant(10003)]})
    wait_for(e, "old-key", "old-secret", 400, code="A400IK")
    assert get(e, "new-key", "new-secret").status == 200


def test_expired_pair_is_refused(stack):
    """A pair past its validUntil is refused, the app's other pair still passes."""
    e, reg = stack
    reg.publish({"apps": [app(10004, "k4", "s4", keys=[{"appKey": "k4-old", "appSecret": "x",
                                                         "validUntil": "2020-01-01T00:00:00Z"}])],
                 "authorizations": [grant(10004)]})
    wait_for(e, "k4", "s4", 200)
    r = get(e, "k4-old", "x")
    assert (r.status, r.code) == (400, "A400IK"), r


def test_grant_added_in_the_registry_opens_the_api(stack):
    """A403UA until the registry authorizes the app on the API."""
    e, reg = stack
    apps = [app(10005, "k5", "s5")]
    reg.publish({"apps": apps, "authorizations": [grant(10005)]})
    wait_for(e, "k5", "s5", 200)
    assert get(e, "k5", "s5", "/reports").code == "A403UA"
    reg.publish({"apps": apps, "authorizations": [grant(10005), grant(10005, "reports")]})
    wait_for(e, "k5", "s5", 200, path="/reports")


def test_last_good_document_survives_failures_and_nonsense(stack):
    """The registry failing or serving an invalid document keeps the last good apps working."""
    e, reg = stack
    reg.publish({"apps": [app(10006, "k6", "s6")], "authorizations": [grant(10006)]})
    wait_for(e, "k6", "s6", 200)
    reg.mode = "invalid"
    time.sleep(REFRESH + 1.5)
    assert get(e, "k6", "s6").status == 200
    reg.mode = "fail"
    time.sleep(REFRESH + 1.5)
    assert get(e, "k6", "s6").status == 200
    reg.stop()
    time.sleep(REFRESH + 1.5)
    assert get(e, "k6", "s6").status == 200
    reg.mode = "serve"
    reg.start()
    time.sleep(0.2)
    stats = e.stats()
    # Tagged by result (envoy/observability/stats-tags.json).
    assert 'cagate_registry_fetches{cagate_result="invalid"}' in stats, stats[-1500:]
    assert 'cagate_registry_fetches{cagate_result="failed"}' in stats, stats[-1500:]
    assert "cagate_registry_apps" in stats


def test_before_a_first_document_registry_apps_are_told_to_retry(backend):
    """With the registry unreachable from the start: static apps work, unknown keys get X503BZ."""
    filt = wasm_filter(config(), vm_env={"CAGATE_STATIC_SECRET": "static-secret-from-env"})
    with Envoy(None, backend.port, concurrency=1, http_filters=[filt], extra_clusters=[static_cluster("registry", 1)]) as e:
        assert get(e, "static-key", "static-secret-from-env").status == 200
        r = get(e, "k1", "s1")
        assert (r.status, r.code) == (503, "X503BZ"), r


def app_requests(e, app_id, code="OK"):
    m = re.search(rf'^cagate_app_requests{{cagate_app="{app_id}",cagate_code="{code}"}} (\d+)', e.stats(), re.M)
    return int(m.group(1)) if m else 0


def test_per_app_counts_follow_the_app_when_a_document_drops_another(backend):
    """perApp metrics across registry installs: when a new document drops an app listed before
    another, the other's requests are still counted under its own appId, not the dropped one's."""
    reg = RegistryServer({"apps": [app(10001, "k1", "s1"), app(10002, "k2", "s2")],
                          "authorizations": [grant(10001), grant(10002)]}).start()
    cfg = dict(config(), metrics={"perApp": True})
    filt = wasm_filter(cfg, vm_env={"CAGATE_STATIC_SECRET": "static-secret-from-env"})
    try:
        with Envoy(None, backend.port, concurrency=1, http_filters=[filt],
                   extra_clusters=[static_cluster("registry", reg.port)]) as e:
            wait_for(e, "k1", "s1", 200)
            reg.publish({"apps": [app(10002, "k2", "s2")], "authorizations": [grant(10002)]})
            wait_for(e, "k1", "s1", 400, code="A400IK")
            time.sleep(1.2)  # counters reach Envoy on the filter's 0.5 s tick
            dropped, kept = app_requests(e, 10001), app_requests(e, 10002)
            assert dropped > 0
            for _ in range(5):
                assert get(e, "k2", "s2").status == 200
            time.sleep(1.2)
            assert (app_requests(e, 10001), app_requests(e, 10002)) == (dropped, kept + 5)
    finally:
        reg.stop()


def test_per_app_counts_stop_at_max_apps(backend):
    """perApp with maxApps 1: the first app counted keeps its series, a second app gets none (its
    requests are still counted by API)."""
    reg = RegistryServer({"apps": [app(10001, "k1", "s1"), app(10002, "k2", "s2")],
                          "authorizations": [grant(10001), grant(10002)]}).start()
    cfg = dict(config(), metrics={"perApp": True, "maxApps": 1})
    filt = wasm_filter(cfg, vm_env={"CAGATE_STATIC_SECRET": "static-secret-from-env"})
    try:
        with Envoy(None, backend.port, concurrency=1, http_filters=[filt],
                   extra_clusters=[static_cluster("registry", reg.port)]) as e:
            wait_for(e, "k1", "s1", 200)
            for _ in range(3):
                assert get(e, "k2", "s2").status == 200
            time.sleep(1.2)  # counters reach Envoy on the filter's 0.5 s tick
            assert app_requests(e, 10001) > 0
            assert app_requests(e, 10002) == 0
            assert 'cagate_app="10002"' not in e.stats()
    finally:
        reg.stop()

"""cagate's metrics and access record end to end: real Envoys with the filter, a real Prometheus
(Debian's) scraping their /stats/prometheus every second, and the files of envoy/observability/.

Two gateways, one scrape job: gateway A (local nonce store, an app registry, remote JWKS that load and
one that never does, per-app metrics) gets signed, AppCode and JWT requests, and refusals: A403IS,
S403TE, S403NU, A403SV, T429PA, D504CO, ...; gateway B runs in cluster mode with its rate limit service
and etcd down (X503BZ, fail-open admissions, cluster errors). Then every query of the Grafana dashboard
and every alert expression (thresholds turned into `bool` comparisons) must return series, and, with a
test copy of the rules (no `for`, a low A403IS threshold), the alerts whose condition the traffic
made true fire, and the others do not.

The access record: an Envoy with envoy/envoy.yaml's access log format, written to a file: one line per
request with the record (%FILTER_STATE(wasm.cagate:PLAIN)%) and %REQ(X-REQUEST-ID)%, every field right,
and no secret (app secret, signature, AppCode, JWT) anywhere in the log."""
import json
import os
import re
import time
import uuid

import pytest
import yaml

from observed import RUNNING
from harness.backend import EchoBackend
from harness.client import call
from harness.engines import grpc_cluster
from harness.envoy import ROOT, Envoy, free_port, static_cluster
from harness.jwks import JwksServer, KeyPair
from harness.prometheus import Prometheus
from harness.registry_server import RegistryServer
from harness.signer import sign
from test_dashboard import load as load_dashboard, queries as dashboard_queries, variable_queries

OBS = os.path.join(ROOT, "envoy", "observability")
ALERTS = os.path.join(OBS, "alerts.yaml")
SAMPLE = os.path.join(ROOT, "envoy", "envoy.yaml")

# The configuration switch that turns on cagate.app_requests (per-app metrics).
PER_APP_METRICS = {"metrics": {"perApp": True}}

KEY1, SECRET1 = "obs-key-1", "obs-secret-1-0123456789abcdef0123"
KEY2, SECRET2 = "obs-key-2", "obs-secret-2-fedcba9876543210fedc"
REG_KEY, REG_SECRET = "obs-registry-key", "obs-registry-secret-00112233445566"
APPCODE1 = "7C0D2E9A4B1F48C6A3E5D7F9B1C3E5A7"
STATIC_JWT = KeyPair("RS256", "static-1")
ONCE_JWT = KeyPair("HS256", "once-1")
REMOTE_JWT = KeyPair("ES256", "remote-1")
DEAD = free_port()  # nothing listens: a backend, a JWKS server, cluster services that are down


def gateway_config():
    """Gateway A: every kind of request the dashboard shows."""
    return dict(PER_APP_METRICS, **{
        "stages": ["RELEASE", "PRE", "TEST"],
        "signature": {"timestampToleranceSeconds": 900, "nonceTtlSeconds": 900},
        "appRegistry": {"uri": "http://registry.internal/cagate/apps.json", "cluster": "registry",
                        "refreshSeconds": 1, "timeoutMs": 1000},
        "apps": [
            {"appId": 10001, "name": "demo", "appKey": KEY1, "appSecret": SECRET1, "appCodes": [APPCODE1]},
            {"appId": 10002, "name": "other", "appKey": KEY2, "appSecret": SECRET2},
        ],
        "plugins": [
            {"name": "static-jwt", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwk": STATIC_JWT.jwk}},
            {"name": "query-jwt", "type": "jwtAuth",
             "data": {"parameter": "token", "parameterLocation": "query", "jwk": STATIC_JWT.jwk}},
            {"name": "once-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwk": ONCE_JWT.jwk, "preventJtiReplay": True}},
            {"name": "remote-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwksUri": "http://jwks.local/keys", "jwksCluster": "jwks",
                      "jwksRefreshSeconds": 1}},
            {"name": "dead-jwt", "type": "jwtAuth",
             "data": {"parameter": "Authorization", "jwksUri": "http://jwks.local/keys", "jwksCluster": "dead",
                      "jwksRefreshSeconds": 1, "jwksTimeoutMs": 300}},
            {"name": "tight", "type": "trafficControl", "data": {"unit": "MINUTE", "apiDefault": 2}},
        ],
        "apis": [
            {"name": "orders", "method": "GET", "path": "/orders/[orderId]", "appCodeAuth": "HEADER_QUERY",
             "stages": ["RELEASE", "TEST"],
             "authorizations": [{"appId": 10001, "stage": "RELEASE"}, {"appId": 10001, "stage": "TEST"},
                                {"appId": 10002, "stage": "RELEASE"}]},
            {"name": "create-order", "method": "POST", "path": "/orders", "forceNonceCheck": True,
             "authorizations": [{"appId": 10001}]},
            {"name": "reports", "method": "GET", "path": "/reports"},  # granted by the registry
            {"name": "profile", "method": "GET", "path": "/users/[userId]", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "static-jwt"}]},
            {"name": "by-query", "method": "GET", "path": "/q", "authType": "ANONYMOUS", "plugins": [{"plugin": "query-jwt"}]},
            {"name": "once", "method": "GET", "path": "/once", "authType": "ANONYMOUS", "plugins": [{"plugin": "once-jwt"}]},
            {"name": "remote", "method": "GET", "path": "/remote", "authType": "ANONYMOUS", "plugins": [{"plugin": "remote-jwt"}]},
            {"name": "dead", "method": "GET", "path": "/dead", "authType": "ANONYMOUS", "plugins": [{"plugin": "dead-jwt"}]},
            {"name": "limited", "method": "GET", "path": "/limited", "authType": "ANONYMOUS", "plugins": [{"plugin": "tight"}]},
            {"name": "broken", "method": "GET", "path": "/broken/*", "authType": "ANONYMOUS"},
            {"name": "public", "method": "ANY", "path": "/public/*", "authType": "ANONYMOUS"},
        ],
    })


REGISTRY_DOC = {"apps": [{"appId": 20001, "appKey": REG_KEY, "appSecret": REG_SECRET}],
                "authorizations": [{"appId": 20001, "api": "reports", "stage": "RELEASE"}]}
GATEWAY_ROUTES = [
    {"match": {"prefix": "/broken"}, "route": {"cluster": "dead", "timeout": "5s"}},
    {"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}},
]

# Gateway B: cluster mode, both services down.
CLUSTER_CONFIG = {
    "cluster": {
        "rateLimitService": {"grpcCluster": "ratelimit", "domain": "cagate", "timeoutMs": 200, "failOpen": True},
        "oneTimeKeys": {"etcdCluster": "etcd", "keyPrefix": "cagate/", "timeoutMs": 200},
    },
    "apps": [{"appId": 10001, "appKey": KEY1, "appSecret": SECRET1}],
    "plugins": [{"name": "hourly", "type": "trafficControl", "data": {"unit": "HOUR", "apiDefault": 1000}}],
    "apis": [
        {"name": "limited", "method": "GET", "path": "/limited", "authType": "ANONYMOUS", "plugins": [{"plugin": "hourly"}]},
        {"name": "orders", "method": "GET", "path": "/orders/[id]", "authorizations": [{"appId": 10001}]},
    ],
}


# ---------------------------------------------------------------------------------------------------
# helpers




def load_json(name):
    with open(os.path.join(OBS, name)) as f:
        return json.load(f)


def with_observability_stats(envoy):
    """The Envoy's bootstrap with the stats config of envoy/observability/ (tags and the µs buckets)."""
    with open(envoy.config_path) as f:
        boot = json.load(f)
    boot.setdefault("stats_config", {})["stats_tags"] = load_json("stats-tags.json")
    boot["stats_config"]["histogram_bucket_settings"] = load_json("histogram-buckets.json")
    with open(envoy.config_path, "w") as f:
        json.dump(boot, f)
    return envoy


def start(name, envoy):
    try:
        with_observability_stats(envoy).start()
    except Exception:
        envoy.stop()
        raise
    RUNNING.append((name, envoy))
    return envoy


def stop(envoy):
    RUNNING[:] = [(n, p) for n, p in RUNNING if p is not envoy]
    envoy.stop()


def eventually(check, timeout=15, what=""):
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def signed(method, path, key=KEY1, secret=SECRET1, **kw):
    return sign(method, path, key, secret, **kw)


def wait_loaded(port):
    """Until the registry's app and the remote JWKS are in (both fetched every second); returns the
    number of requests it took."""
    calls = [0]

    def get(path, headers):
        calls[0] += 1
        return call(port, "GET", path, headers).status == 200

    eventually(lambda: get("/reports", signed("GET", "/reports", REG_KEY, REG_SECRET)), what="the registry's app admitted")
    eventually(lambda: get("/remote", bearer(REMOTE_JWT.token())), what="the remote JWKS loaded")
    return calls[0]


def gateway_traffic(port):
    """One round of mixed traffic on gateway A; returns the codes seen."""
    seen = []

    def go(method, path, headers=None, body=None):
        r = call(port, method, path, headers, body)
        seen.append(r.code or r.status)
        return r

    for i in range(3):
        go("GET", f"/orders/{i}", signed("GET", f"/orders/{i}"))                                # OK, RELEASE
    for i in range(2):
        go("GET", f"/orders/{i}", signed("GET", f"/orders/{i}", headers={"x-ca-stage": "TEST"}))  # OK, TEST
    go("GET", "/orders/7", {"authorization": f"APPCODE {APPCODE1}"})                           # AppCode
    go("GET", f"/orders/8?AppCode={APPCODE1}")                                                  # AppCode in the query
    go("GET", "/reports", signed("GET", "/reports", REG_KEY, REG_SECRET))                      # a registry app
    for _ in range(2):
        go("GET", "/users/1", bearer(STATIC_JWT.token()))                                       # JWT
    go("GET", f"/q?token={STATIC_JWT.token()}")
    go("GET", "/remote", bearer(REMOTE_JWT.token()))
    go("GET", "/public/x")                                                                      # anonymous
    for key in (KEY1, KEY2):
        for _ in range(3):
            go("GET", "/orders/1", signed("GET", "/orders/1", key, "wrong-secret"))            # A403IS
    old = int((time.time() - 3600) * 1000)
    for _ in range(2):
        go("GET", "/orders/1", signed("GET", "/orders/1", timestamp=old))                      # S403TE
    h = signed("POST", "/orders")
    go("POST", "/orders", h)
    go("POST", "/orders", h)                                                                    # S403NU
    t = ONCE_JWT.token()
    go("GET", "/once", bearer(t))
    go("GET", "/once", bearer(t))                                                               # A403SV
    go("GET", "/dead", bearer(REMOTE_JWT.token()))                                              # A403JK: no key set
    for _ in range(4):
        go("GET", "/limited")                                                                   # T429PA after 2
    for _ in range(2):
        go("GET", "/broken/x")                                                                  # D504CO
    go("GET", "/orders/1")                                                                      # no credentials
    go("GET", "/nowhere")                                                                       # no API
    return seen


def cluster_traffic(port):
    seen = []
    for i in range(3):
        seen.append(call(port, "GET", f"/orders/{i}", signed("GET", f"/orders/{i}")).code)     # X503BZ: etcd down
    for _ in range(3):
        seen.append(call(port, "GET", "/limited").status)                                       # fail-open: 200
    return seen


def rules_for_the_test(tmp_path):
    """alerts.yaml for a test that lasts seconds: no `for`, and a low A403IS threshold."""
    with open(ALERTS) as f:
        rules = yaml.safe_load(f)
    for group in rules["groups"]:
        group["name"] += "-test"
        for rule in group["rules"]:
            rule["for"] = "0s"
            if rule["alert"] == "CagateSignatureFailuresSpike":
                rule["expr"] = rule["expr"].replace("> 0.5", "> 0.001").replace("> 0.05", "> 0.001")
    path = tmp_path / "alerts-test.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return str(path)


# ---------------------------------------------------------------------------------------------------
# the stack

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    backend = EchoBackend().__enter__()
    jwks = JwksServer([REMOTE_JWT])
    registry = RegistryServer(REGISTRY_DOC).start()
    gateway = cluster = prom = None
    try:
        gateway = start("gateway", Envoy(gateway_config(), backend.port, concurrency=2, routes=GATEWAY_ROUTES,
                                         extra_clusters=[static_cluster("jwks", jwks.port), static_cluster("dead", DEAD),
                                                         static_cluster("registry", registry.port)]))
        cluster = start("cluster-mode gateway", Envoy(CLUSTER_CONFIG, backend.port, concurrency=2,
                                                      extra_clusters=[grpc_cluster("ratelimit", DEAD),
                                                                      grpc_cluster("etcd", DEAD)]))
        prom = Prometheus([gateway.admin_port, cluster.admin_port],
                          rule_files=[rules_for_the_test(tmp_path_factory.mktemp("rules"))]).start()
        RUNNING.append(("prometheus", prom))
        prom.wait_scraped()
        wait_loaded(gateway.port)
        first = gateway_traffic(gateway.port), cluster_traffic(cluster.port)
        time.sleep(2.5)  # the filter flushes its counters every 0.5 s, Prometheus scrapes every 1 s
        second = gateway_traffic(gateway.port), cluster_traffic(cluster.port)  # counters seen before now grow
        time.sleep(3)
        yield {"prom": prom, "gateway": gateway, "cluster": cluster, "codes": (first, second)}
    finally:
        for name, proc in list(RUNNING):
            if proc in (gateway, cluster, prom):
                RUNNING.remove((name, proc))
                proc.stop()
        registry.stop()
        jwks.stop()
        backend.__exit__()


def test_traffic_got_the_codes_it_was_meant_to(stack):
    """The scenario itself (the filter's behaviour, not its metrics)."""
    (gateway_codes, cluster_codes), _ = stack["codes"]
    for code in ["A403IS", "S403TE", "S403NU", "A403SV", "A403JK", "T429PA", "D504CO", 200]:
        assert code in gateway_codes, (code, gateway_codes)
    assert cluster_codes.count("X503BZ") == 3 and cluster_codes.count(200) == 3, cluster_codes


def test_both_gateways_scraped(stack):
    health = stack["prom"].targets_health()
    assert len(health) == 2 and all(h == "up" for h, _ in health.values()), health


# The metrics and labels the dashboard and the alerts are built on.
FAMILIES = {
    "cagate_requests": {"cagate_api", "cagate_stage", "cagate_code"},
    "cagate_app_requests": {"cagate_app", "cagate_code"},
    "cagate_filter_us_bucket": {"le"},
    "cagate_filter_us_count": set(),
    "cagate_jwks": {"cagate_plugin", "cagate_result"},
    "cagate_registry_age_seconds": set(),
    "cagate_registry_fetches": {"cagate_result"},
    "cagate_cluster": {"cagate_service", "cagate_result"},
    "cagate_refused": {"code"},
    "cagate_traffic_throttled": {"plugin", "dimension"},
    "cagate_breaker_opened": set(),
    "cagate_requests_allowed": set(),
    "cagate_requests_refused": set(),
}


def test_metric_families(stack):
    prom = stack["prom"]
    missing = {}
    for name, labels in FAMILIES.items():
        series = prom.query(name)
        if not series:
            missing[name] = "no series"
        elif not any(labels <= set(s["metric"]) for s in series):
            missing[name] = f"no series with {sorted(labels)}: {[s['metric'] for s in series][:3]}"
    assert not missing, f"missing in Prometheus: {json.dumps(missing, indent=1)}"


def test_request_counts_by_api_stage_code(stack):
    prom = stack["prom"]

    def value(expr):
        r = prom.query(expr)
        return float(r[0]["value"][1]) if r else 0.0

    assert value('sum(cagate_requests{cagate_api="orders",cagate_stage="RELEASE",cagate_code="OK"})') == 2 * (3 + 1 + 1)
    assert value('sum(cagate_requests{cagate_api="orders",cagate_stage="TEST",cagate_code="OK"})') == 2 * 2
    assert value('sum(cagate_requests{cagate_api="orders",cagate_code="A403IS"})') == 2 * 6
    assert value('sum(cagate_requests{cagate_api="broken",cagate_code="D504CO"})') == 2 * 2
    assert value('sum(cagate_requests{cagate_api="orders",cagate_code="X503BZ"})') == 2 * 3
    assert value('sum(cagate_app_requests{cagate_app="10001",cagate_code="A403IS"})') == 2 * 3
    assert value('sum(cagate_app_requests{cagate_app="20001",cagate_code="OK"})') >= 2
    # one filter time per request (Envoy merges histograms at its stats flush, every 5 s)
    prom.wait_for("sum(cagate_filter_us_count) == sum(cagate_requests) and sum(cagate_requests) > 0", timeout=15)


def test_registry_age_follows_fetches(stack):
    """The registry answers 304 every second after the first load: each good fetch means the gateway
    holds the current document, so the age stays within a refresh (else CagateRegistryStale would
    fire on every registry that does not change for 300 s)."""
    prom = stack["prom"]
    time.sleep(2)
    (age,) = prom.query("cagate_registry_age_seconds")
    assert float(age["value"][1]) <= 3, age
    assert prom.query('cagate_registry_fetches{cagate_result="unchanged"} > 0'), "no 304 seen"


def test_dashboard_queries_return_series(stack):
    prom = stack["prom"]
    empty = [(title, ref, expr) for title, ref, expr in dashboard_queries() if not prom.query(expr)]
    assert not empty, "dashboard queries without a series:\n" + "\n".join(f"  {t} [{r}]: {e}" for t, r, e in empty)


def test_dashboard_variables_have_values(stack):
    prom = stack["prom"]
    for name, selector, label in variable_queries(load_dashboard()):
        values = {s["metric"].get(label) for s in prom.query(f"count by ({label}) ({selector})")} - {None}
        assert values, (name, selector, label)
    assert {"orders", "broken", "reports"} <= {s["metric"].get("cagate_api") for s in prom.query("count by (cagate_api) (cagate_requests)")}


def probe(expr):
    """An alert expression with its thresholds as `bool` comparisons: a series wherever the expression's
    inputs exist, whether or not the condition holds."""
    return re.sub(r"(>=|<=|==|!=|>|<)\s*(?=-?[0-9.])", r"\1 bool ", expr)


def alert_rules():
    with open(ALERTS) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def test_probe():
    assert probe('sum(rate(x{code!="OK"}[5m])) > 0.25 and y > 1') == 'sum(rate(x{code!="OK"}[5m])) > bool 0.25 and y > bool 1'


def test_alert_expressions_return_series(stack):
    prom = stack["prom"]
    empty = [(r["alert"], probe(r["expr"])) for r in alert_rules() if not prom.query(probe(r["expr"]))]
    assert not empty, "alert expressions without a series:\n" + "\n".join(f"  {a}: {e}" for a, e in empty)


def test_alerts_fire_when_their_condition_holds(stack):
    prom = stack["prom"]
    expected = {("CagateServiceBusy", None), ("CagateClusterServiceDown", "etcd"), ("CagateClusterServiceDown", "rls"),
                ("CagateJwksFailing", "dead-jwt"), ("CagateSignatureFailuresSpike", None)}

    def firing():
        return {(a["labels"]["alertname"], a["labels"].get("cagate_service") or a["labels"].get("cagate_plugin"))
                for a in prom.alerts() if a["state"] == "firing"}

    try:
        eventually(lambda: expected <= firing(), timeout=20)
    except AssertionError:
        raise AssertionError(f"firing: {sorted(firing(), key=str)}, expected at least {sorted(expected, key=str)}")
    got = firing()
    assert ("CagateJwksFailing", "remote-jwt") not in got  # its fetches succeed
    assert not any(a == "CagateRegistryStale" for a, _ in got)  # loaded every second


# ---------------------------------------------------------------------------------------------------
# the access record

RECORD_FIELDS = {"requestId", "envoyRequestId", "apiName", "stage", "appId", "appKey", "authType", "errorCode",
                 "errorMessage", "plugin", "clientIp", "clientNonce", "httpMethod", "path", "backendPath",
                 "statusCode", "gatewayMicros", "enforced"}
# The client's address is Envoy's own field of the line (`client_ip`): reading it in the filter would
# cost every request a host call.
ALWAYS = {"requestId", "envoyRequestId", "httpMethod", "path", "statusCode", "gatewayMicros", "enforced"}


def sample_access_log(path):
    """envoy/envoy.yaml's access log (stdout), written to `path` instead."""
    with open(SAMPLE) as f:
        (boot,) = [d for d in yaml.safe_load_all(f) if d]
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (logger,) = hcm["access_log"]
    return [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(path), "log_format": logger["typed_config"]["log_format"]}}]


def test_access_record(tmp_path):
    log_path = tmp_path / "access.log"
    secrets = {SECRET1, SECRET2, REG_SECRET, APPCODE1, ONCE_JWT.jwk["k"]}
    sent = []  # (what, method, path, headers, response, expectations)

    with EchoBackend() as backend:
        jwks = JwksServer([REMOTE_JWT])
        registry = RegistryServer(REGISTRY_DOC).start()
        e = Envoy(gateway_config(), backend.port, concurrency=2, routes=GATEWAY_ROUTES,
                  hcm_options={"access_log": sample_access_log(log_path)},
                  extra_clusters=[static_cluster("jwks", jwks.port), static_cluster("dead", DEAD),
                                  static_cluster("registry", registry.port)])
        try:
            start("access-log gateway", e)

            def go(what, method, path, headers=None, body=None, **expect):
                headers = dict(headers or {})
                for k, v in headers.items():
                    if k in ("x-ca-signature", "authorization"):
                        secrets.add(v.split(" ", 1)[-1])
                r = call(e.port, method, path, headers, body)
                sent.append((what, method, path, headers, r, expect))
                return r

            warmup = wait_loaded(e.port)
            h = signed("GET", "/orders/1?view=full")
            go("signed", "GET", "/orders/1?view=full", h, status=200, apiName="orders", stage="RELEASE", appId="10001",
               appKey=KEY1, authType="SIGNATURE", clientNonce=h["x-ca-nonce"], forwarded=True)
            go("signed TEST", "GET", "/orders/2", signed("GET", "/orders/2", headers={"x-ca-stage": "TEST"}), status=200,
               apiName="orders", stage="TEST", appId="10001", authType="SIGNATURE", forwarded=True)
            go("registry app", "GET", "/reports", signed("GET", "/reports", REG_KEY, REG_SECRET), status=200,
               apiName="reports", appId="20001", appKey=REG_KEY, authType="SIGNATURE", forwarded=True)
            go("AppCode", "GET", "/orders/3", {"authorization": f"APPCODE {APPCODE1}"}, status=200, apiName="orders",
               appId="10001", authType="APPCODE", forwarded=True)
            go("AppCode in the query", "GET", f"/orders/4?AppCode={APPCODE1}&x=1", status=200, apiName="orders",
               appId="10001", authType="APPCODE", forwarded=True)
            token = STATIC_JWT.token(userId="7")
            secrets.add(token)
            go("JWT", "GET", "/users/7", bearer(token), status=200, apiName="profile", authType="JWT", forwarded=True)
            token = STATIC_JWT.token()
            secrets.add(token)
            go("JWT in the query", "GET", f"/q?token={token}", status=200, apiName="by-query", authType="JWT", forwarded=True)
            go("anonymous", "GET", "/public/x", status=200, apiName="public", authType="ANONYMOUS", forwarded=True)
            go("bad signature", "GET", "/orders/1", signed("GET", "/orders/1", KEY1, "wrong-secret"), status=403,
               errorCode="A403IS", apiName="orders", appId="10001", appKey=KEY1, authType="SIGNATURE")
            go("old timestamp", "GET", "/orders/1", signed("GET", "/orders/1", timestamp=int((time.time() - 3600) * 1000)),
               status=403, errorCode="S403TE", apiName="orders")
            h = signed("POST", "/orders", nonce=f"nonce-{uuid.uuid4()}")
            go("nonce", "POST", "/orders", h, status=200, apiName="create-order", clientNonce=h["x-ca-nonce"], forwarded=True)
            go("nonce replayed", "POST", "/orders", h, status=403, errorCode="S403NU", clientNonce=h["x-ca-nonce"])
            bad = STATIC_JWT.token().rsplit(".", 1)[0] + "." + STATIC_JWT.token().rsplit(".", 1)[1]  # another token's signature
            secrets.add(bad)
            go("bad JWT", "GET", "/users/1", bearer(bad), status=403, errorCode="A403JT", plugin="jwtAuth", apiName="profile")
            go("JWT once", "GET", "/once", bearer(ONCE_JWT.token(jti="j-1")), status=200, authType="JWT", forwarded=True)
            go("JWT replayed", "GET", "/once", bearer(ONCE_JWT.token(jti="j-1")), status=403, errorCode="A403SV",
               plugin="jwtAuth")
            for _ in range(2):
                go("within the limit", "GET", "/limited", status=200, apiName="limited", forwarded=True)
            go("throttled", "GET", "/limited", status=429, errorCode="T429PA", plugin="trafficControl", apiName="limited")
            go("backend down", "GET", "/broken/x", status=504, errorCode="D504CO", apiName="broken")
            go("no credentials", "GET", "/orders/1", apiName="orders")
            go("no API", "GET", "/nowhere")
        finally:
            stop(e)  # the file log is flushed on exit
            registry.stop()
            jwks.stop()

    wrong = [(what, r.status, r.code) for what, _, _, _, r, expect in sent if expect.get("status", r.status) != r.status]
    assert not wrong, f"the scenario itself (not the record): {wrong}"
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    records = {}
    for line in lines:
        assert isinstance(line.get("cagate"), str), f"no access record in the line: {line}"
        record = json.loads(line["cagate"])
        assert record["requestId"] not in records, "one line per request"
        records[record["requestId"]] = (line, record)
    assert len(lines) == warmup + len(sent), "one line per request"

    for what, method, path, headers, r, expect in sent:
        rid = r.header("x-ca-request-id")
        assert rid and rid in records, (what, r)
        line, record = records[rid]
        assert set(record) <= RECORD_FIELDS, (what, set(record) - RECORD_FIELDS)
        assert ALWAYS <= set(record), (what, ALWAYS - set(record))
        assert record["envoyRequestId"] and record["envoyRequestId"] == line["x_request_id"], (what, record, line)
        assert line["client_ip"] == "127.0.0.1" and record.get("clientIp", "127.0.0.1") == "127.0.0.1", (what, record, line)
        assert record["httpMethod"] == method, (what, record)
        assert record["path"].split("?")[0] == path.split("?")[0], (what, record)
        assert record["statusCode"] == r.status == line["status"], (what, record, r)
        assert isinstance(record["gatewayMicros"], int) and record["gatewayMicros"] >= 0, (what, record)
        assert record["enforced"] is True, (what, record)
        assert record.get("errorCode") == r.code, (what, record, r)
        if r.code:
            assert record["errorMessage"] == r.header("x-ca-error-message"), (what, record, r)
        if "authType" in record:
            assert record["authType"] in ("SIGNATURE", "APPCODE", "JWT", "ANONYMOUS"), (what, record)
        for field in ("apiName", "stage", "appId", "appKey", "authType", "errorCode", "plugin", "clientNonce"):
            if field in expect:
                assert record.get(field) == expect[field], (what, field, record)
        if expect.get("forwarded"):
            assert record.get("backendPath"), (what, record)
            echoed = json.loads(r.body)
            assert echoed["headers"]["x-request-id"] == [record["envoyRequestId"]], (what, echoed["headers"])

    leaked = sorted(s[:12] + "…" for s in secrets if s and s in text)
    assert not leaked, f"secrets in the access log: {leaked}"
    for _, record in records.values():
        for value in record.values():
            assert not any(s in str(value) for s in secrets if s), record

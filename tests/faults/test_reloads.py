"""Reloads under load, on one Envoy (--concurrency 2) in local mode: the filter's configuration
swapped through file-based LDS, the app registry's document replaced, the remote JWKS rotated, all
while signed, AppCode and JWT requests run. Failed requests are counted (0 expected: refusals by
design are told apart); a nonce admitted before a reload is refused after it. Then what a full Envoy
restart forgets: local mode forgets its nonces (a replay is admitted once more), cluster mode
(etcd) does not."""
import collections
import concurrent.futures
import threading
import time

import pytest

from conftest import APPCODE, KEY, RUNNING, SECRET, figure
from harness.engines import Etcd, grpc_cluster
from harness.envoy import Envoy, static_cluster
from harness.jwks import JwksServer, KeyPair
from harness.registry_server import RegistryServer
from harness.signer import sign
from traffic import send

REFRESH = 1


def config(version):
    """`version` changes the configuration (a new API each time) without changing what the traffic
    meets."""
    return {
        "appRegistry": {"uri": "http://registry.internal/apps.json", "cluster": "registry",
                        "refreshSeconds": REFRESH, "timeoutMs": 1000},
        "apps": [{"appId": 1, "appKey": KEY, "appSecret": SECRET, "appCodes": [APPCODE]}],
        "plugins": [{"name": "remote-jwt", "type": "jwtAuth",
                     "data": {"parameter": "Authorization", "jwksUri": "http://jwks.internal/keys",
                              "jwksCluster": "jwks", "jwksRefreshSeconds": REFRESH,
                              "jwksTimeoutMs": 1000}}],
        "apis": [
            {"name": "orders", "method": "GET", "path": "/orders/[id]", "appCodeAuth": "HEADER",
             "authorizations": [{"appId": 1}]},
            {"name": "reports", "method": "GET", "path": "/reports", "authorizations": [{"appId": 1}]},
            {"name": "users", "method": "GET", "path": "/users/[id]", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "remote-jwt"}]},
            {"name": f"extra-{version}", "method": "GET", "path": f"/extra/{version}", "authType": "ANONYMOUS"},
        ],
    }


def registry_doc(churn):
    """The stable app 10001 and, every other version, app 10002."""
    apps = [{"appId": 10001, "appKey": "reg-key-1", "appSecret": "reg-secret-1"}]
    grants = [{"appId": 10001, "api": "reports", "stage": "RELEASE"}]
    if churn % 2:
        apps.append({"appId": 10002, "appKey": "reg-key-2", "appSecret": "reg-secret-2"})
        grants.append({"appId": 10002, "api": "reports", "stage": "RELEASE"})
    return {"apps": apps, "authorizations": grants}


K1, K2 = KeyPair("ES256", "rot-1"), KeyPair("ES256", "rot-2")


@pytest.fixture(scope="module")
def stack(backend):
    reg = RegistryServer(registry_doc(0)).start()
    jwks = JwksServer([K1])
    e = Envoy(config(0), backend.port, concurrency=2, lds=True,
              extra_clusters=[static_cluster("registry", reg.port), static_cluster("jwks", jwks.port)])
    with e:
        RUNNING.append(e)
        deadline = time.time() + 10
        while not all(ok for ok in warm(e)):
            assert time.time() < deadline, "registry and JWKS loaded on every worker"
            time.sleep(0.2)
        try:
            yield e, reg, jwks
        finally:
            RUNNING.remove(e)
    reg.stop()
    jwks.stop()


def warm(e):
    """Six fresh connections (so both workers): the registry app and a JWT admitted."""
    out = []
    for _ in range(6):
        out.append(send(e.port, "GET", "/reports", sign("GET", "/reports", "reg-key-1", "reg-secret-1"))[0] == 200)
        out.append(send(e.port, "GET", "/users/1", {"authorization": f"Bearer {K1.token()}"})[0] == 200)
    return out


class Mixed:
    """Signed (fresh nonces), AppCode, registry-app and JWT requests in a loop on `threads` threads;
    `jwt_key` is the key the clients sign tokens with (switched by the test)."""

    def __init__(self, port, threads=6):
        self.port = port
        self.jwt_key = K1
        self.results = collections.Counter()   # (kind, status, code)
        self.failures = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self._loop, i) for i in range(threads)]

    def _loop(self, i):
        kinds = ["signed", "appcode", "registry", "jwt"]
        n = i
        while not self.stopping.is_set():
            kind = kinds[n % len(kinds)]
            n += 1
            if kind == "signed":
                path, h = "/orders/7", sign("GET", "/orders/7", KEY, SECRET)
            elif kind == "appcode":
                path, h = "/orders/8", {"authorization": f"APPCODE {APPCODE}"}
            elif kind == "registry":
                path, h = "/reports", sign("GET", "/reports", "reg-key-1", "reg-secret-1")
            else:
                path, h = "/users/9", {"authorization": f"Bearer {self.jwt_key.token()}"}
            status, code = send(self.port, "GET", path, h)
            with self.lock:
                self.results[(kind, status, code)] += 1
                if status != 200:
                    self.failures.append((time.monotonic(), kind, status, code))

    def stop(self):
        self.stopping.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()
        return self.results


def test_reloads_under_load(stack):
    e, reg, jwks = stack
    # A nonce admitted before any reload.
    before = sign("GET", "/orders/1", KEY, SECRET)
    assert send(e.port, "GET", "/orders/1", before) == (200, None)
    traffic = Mixed(e.port)
    churned = collections.Counter()
    swaps = 0
    try:
        for step in range(1, 9):
            time.sleep(0.7)
            e.publish(config(step))            # a new listener: new Wasm VMs, new configuration
            e.wait_listener_update()
            swaps += 1
            reg.publish(registry_doc(step))    # the registry's document replaced
            if step == 2:
                jwks.keys = [K1, K2]           # rotation, step 1: the new key published beside the old
            if step == 5:
                traffic.jwt_key = K2           # clients move to the new key after a refresh and a tick
            if step == 7:
                jwks.keys = [K2]               # step 2: the old key retired
            # The churned app: admitted when the document has it, A400IK when not (by design).
            status, code = send(e.port, "GET", "/reports", sign("GET", "/reports", "reg-key-2", "reg-secret-2"))
            churned[(status, code)] += 1
        time.sleep(1.5)
    finally:
        results = traffic.stop()
    total = sum(results.values())
    failures = traffic.failures
    figure("reloads under load", "requests / failed", f"{total} / {len(failures)}")
    figure("reloads under load", "listener swaps / registry documents / JWKS changes", f"{swaps} / {swaps} / 2")
    figure("reloads under load", "answers", dict(sorted(results.items(), key=str)))
    figure("reloads under load", "churned app answers (by design)", dict(churned))
    assert set(churned) <= {(200, None), (400, "A400IK")}, churned
    assert not failures, f"{len(failures)} failed of {total}: {collections.Counter(f[1:] for f in failures)}"
    # The nonce admitted before the reloads is still remembered (Envoy's shared data outlives VMs).
    assert send(e.port, "GET", "/orders/1", before) == (403, "S403NU")
    # The retired key is refused (by design) once a fetch saw the new set: within a refresh, or the
    # fetch lease's timeout when a reload dropped the VM that held it.
    t = time.monotonic()
    while send(e.port, "GET", "/users/1", {"authorization": f"Bearer {K1.token()}"}) != (403, "A403JK"):
        assert time.monotonic() - t < REFRESH + 1 + 3, "the retired key still admitted"
        time.sleep(0.1)
    assert send(e.port, "GET", "/users/1", {"authorization": f"Bearer {K2.token()}"}) == (200, None)


def test_remote_keys_survive_a_reload(stack):
    """Right after a listener swap, a JWT signed with a key of the remote set is admitted (the set is
    in Envoy's shared data, fetched before the reload)."""
    e, _, jwks = stack
    jwks.keys = [K2]
    refused = 0
    for step in range(20, 24):
        e.publish(config(step))
        e.wait_listener_update()
        # New connections: both workers' new VMs.
        first = [send(e.port, "GET", "/users/1", {"authorization": f"Bearer {K2.token()}"}) for _ in range(8)]
        refused += sum(1 for r in first if r != (200, None))
    figure("reloads under load", "JWTs refused right after a swap", f"{refused} of 32 (4 swaps)")
    assert refused == 0, f"{refused} of 32 JWT requests refused right after a swap"


def restart_replay(backend, cfg, clusters=()):
    """A signed request admitted, Envoy stopped and started again (a new process), the same request
    sent again: (first answer, replay before the restart, replay after it)."""
    h = sign("GET", "/orders/1", KEY, SECRET)
    with Envoy(cfg, backend.port, concurrency=2, extra_clusters=clusters) as first:
        one = send(first.port, "GET", "/orders/1", h)
        two = send(first.port, "GET", "/orders/1", h)
    with Envoy(cfg, backend.port, concurrency=2, extra_clusters=clusters) as second:
        three = send(second.port, "GET", "/orders/1", h)
    return one, two, three


def local_config():
    return {"apps": [{"appId": 1, "appKey": KEY, "appSecret": SECRET}],
            "apis": [{"name": "orders", "method": "GET", "path": "/orders/[id]", "authorizations": [{"appId": 1}]}]}


def test_a_restart_forgets_local_nonces(backend):
    """Local mode: the nonce store is Envoy's shared data, gone with the process: the replay of a
    captured request is admitted once more after a restart (within the timestamp tolerance)."""
    assert restart_replay(backend, local_config()) == ((200, None), (403, "S403NU"), (200, None))
    figure("envoy restart", "local mode: replay after a restart", "admitted (forgotten)")


def test_a_restart_keeps_cluster_nonces(backend):
    """Cluster mode: the nonce was claimed in etcd, which the restart does not touch."""
    with Etcd() as etcd:
        cfg = dict(local_config(), cluster={"oneTimeKeys": {"etcdCluster": "etcd", "timeoutMs": 500}})
        got = restart_replay(backend, cfg, clusters=[grpc_cluster("etcd", etcd.port)])
    assert got == ((200, None), (403, "S403NU"), (403, "S403NU")), got
    figure("envoy restart", "cluster mode: replay after a restart", "refused S403NU (kept in etcd)")

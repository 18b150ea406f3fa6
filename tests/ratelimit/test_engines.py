"""The engine harness (harness/engines.py) and the etcd one-time-key claim (harness/etcd_grpc.py) against
Debian's etcd: exactly one of many parallel claims wins, keys carry their lease, a restart keeps them."""
import time
from concurrent import futures

import pytest

from harness.engines import (Etcd, etcd_get, etcd_grant, etcd_keys, etcd_lease_of, etcd_lease_ttl, etcd_put,
                             etcdctl)
from harness.etcd_grpc import EtcdClient, encode_claim


def test_claim_encoding_bytes():
    # compare{target CREATE, key "k", create_revision 0 (explicit)} success{request_put{key, value, lease 5}}
    assert encode_claim(b"k", b"v", 5).hex() == "0a0710011a016b2800" "120a" "1208" "0a016b" "120176" "1805"


def test_claim_once_with_lease(etcd_engine):
    port = etcd_engine.port
    with EtcdClient(port) as c:
        lease, ttl = c.lease_grant(30)
        assert ttl == 30 and lease > 0
        assert c.claim("cagate/once/t1", b"app-1", lease) is True
        assert c.claim("cagate/once/t1", b"app-2", lease) is False
        kv = c.get("cagate/once/t1")
        assert (kv.value, kv.lease, kv.version) == (b"app-1", lease, 1)
    got = etcd_get(port, "cagate/once/t1")
    assert got["value"] == "app-1" and got["lease"] == lease and got["create_revision"] > 0
    assert etcd_lease_of(port, "cagate/once/t1") == lease
    assert etcd_lease_of(port, "cagate/once/absent") is None
    assert etcd_get(port, "cagate/once/absent") is None
    remaining, granted = etcd_lease_ttl(port, lease)
    assert granted == 30 and 0 < remaining <= 30
    assert "cagate/once/t1" in etcd_keys(port, "cagate/once/")
    etcd_put(port, "cagate/plain", "x")
    assert etcd_lease_of(port, "cagate/plain") == 0


def test_parallel_claims_admit_exactly_one(etcd_engine):
    port = etcd_engine.port
    clients = [EtcdClient(port) for _ in range(8)]
    try:
        lease = clients[0].lease_grant(60)[0]
        with futures.ThreadPoolExecutor(20) as ex:
            for round_ in range(20):
                key = f"cagate/once/race-{round_}"
                won = list(ex.map(lambda i: clients[i % 8].claim(key, str(i), lease), range(20)))
                assert won.count(True) == 1, (round_, won)
    finally:
        for c in clients:
            c.close()


def test_lease_expiry_removes_the_key(etcd_engine):
    port = etcd_engine.port
    lease = etcd_grant(port, 1)
    with EtcdClient(port) as c:
        assert c.claim("cagate/once/short", b"1", lease)
        deadline = time.time() + 10
        while etcd_get(port, "cagate/once/short") is not None and time.time() < deadline:
            time.sleep(0.2)
        assert etcd_get(port, "cagate/once/short") is None
        assert etcd_lease_ttl(port, lease)[0] == -1
        assert c.claim("cagate/once/short", b"1", etcd_grant(port, 5))   # free again


def test_restart_keeps_keys_and_leases():
    with Etcd() as e:
        lease = etcd_grant(e.port, 120)
        with EtcdClient(e.port) as c:
            assert c.claim("cagate/once/r", b"1", lease)
        port = e.port
        e.stop()
        assert not e.healthy()
        with pytest.raises(RuntimeError):
            etcdctl(port, "get", "x")
        e.start()
        assert e.port == port
        assert etcd_lease_of(port, "cagate/once/r") == lease
        with EtcdClient(port) as c:
            assert c.claim("cagate/once/r", b"1", lease) is False
        e.kill()   # a crash: same outcome
        e.start()
        assert etcd_lease_of(port, "cagate/once/r") == lease


def test_redis_harness(redis_db):
    c = redis_db.client()
    c.set("a", "1")
    assert redis_db.cli("GET", "a").strip() == "1"
    redis_db.pause(200)
    t = time.monotonic()
    c.set("b", "2")   # a write waits out the pause
    assert time.monotonic() - t >= 0.1
    redis_db.flushall()
    assert c.keys("*") == []

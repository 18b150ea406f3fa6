"""A bad configuration is refused as a whole: Envoy does not serve with it."""
import copy

from conftest import GATE_CONFIG, SECRET1
from harness.envoy import Envoy


def test_envoy_refuses_a_bad_configuration(backend):
    bad = copy.deepcopy(GATE_CONFIG)
    bad["apis"][0]["method"] = "FETCH"
    bad["apps"][1]["appKey"] = bad["apps"][0]["appKey"]
    bad["surprise"] = True
    e = Envoy(bad, backend.port, concurrency=1).start(wait=False)
    try:
        code = e.wait_exit(30)
        log = e.log_text()
        assert code is not None and code != 0, log[-3000:]
        assert "apis[0].method: unknown method FETCH" in log
        assert "apps[1].appKey: duplicate appKey" in log
        assert "surprise: unknown field" in log
        assert SECRET1 not in log
    finally:
        e.stop()


def test_envoy_refuses_invalid_json(backend):
    e = Envoy('{"apps": [', backend.port, concurrency=1).start(wait=False)
    try:
        assert e.wait_exit(30) not in (None, 0)
        assert "not valid JSON" in e.log_text()
    finally:
        e.stop()

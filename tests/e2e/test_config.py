"""A bad configuration is refused as a whole: Envoy does not serve with it, at start or on a reload."""
import copy
import time

from conftest import GATE_CONFIG, KEY1, SECRET1, call
from harness.envoy import Envoy
from harness.signer import sign


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


def test_a_bad_configuration_pushed_at_runtime_is_rejected_and_the_running_one_stays(backend):
    """A reload with an invalid configuration: Envoy rejects the listener update
    (listener_manager.lds.update_rejected, what to alert on), logs every problem, and keeps serving
    with the configuration it had."""
    with Envoy(GATE_CONFIG, backend.port, concurrency=1, lds=True) as e:
        def ok():
            return call(e.port, "GET", "/orders/1", sign("GET", "/orders/1", KEY1, SECRET1)).status
        assert ok() == 200
        bad = copy.deepcopy(GATE_CONFIG)
        bad["apis"][0]["method"] = "FETCH"
        rejected = e.counter("listener_manager.lds.update_rejected")
        e.publish(bad)
        deadline = time.time() + 15
        while e.counter("listener_manager.lds.update_rejected") == rejected:
            assert time.time() < deadline, e.log_text()[-3000:]
            time.sleep(0.05)
        assert "apis[0].method: unknown method FETCH" in e.log_text()
        assert SECRET1 not in e.log_text()
        assert ok() == 200, "the running configuration still serves"

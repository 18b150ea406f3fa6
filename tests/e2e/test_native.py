"""The native build (CAGATE_BUILD=native): what only it has, against a real Envoy. The rest of the
suite runs against it unchanged."""
import re

import pytest

from conftest import GATE_CONFIG
from harness.envoy import NATIVE, Envoy

pytestmark = pytest.mark.skipif(not NATIVE, reason="native build only (CAGATE_BUILD=native)")


def test_envoy_says_the_abi_version_matched(backend):
    """Envoy only warns when a module's ABI version differs from its own: the match is asserted."""
    with Envoy(GATE_CONFIG, backend.port, concurrency=1) as e:
        log = e.log_text()
    assert re.search(r"Dynamic module ABI version v[0-9.]+ matched\.", log), log[-3000:]
    assert "is deprecated" not in log


def test_cluster_mode_is_refused_with_a_clear_message(backend):
    """Cluster mode needs gRPC calls the native module does not make: the whole configuration is
    refused (Envoy does not start), never run without its checks."""
    cfg = dict(GATE_CONFIG, cluster={"rateLimitService": {"grpcCluster": "rls"}})
    e = Envoy(cfg, backend.port, concurrency=1).start(wait=False)
    try:
        code = e.wait_exit(30)
        log = e.log_text()
    finally:
        e.stop()
    assert code not in (None, 0), log[-3000:]
    assert "cagate: configuration refused, 1 problem(s)" in log, log[-3000:]
    assert "cagate: config: cluster: cluster mode (rateLimitService, oneTimeKeys) is not available in the native build" in log


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

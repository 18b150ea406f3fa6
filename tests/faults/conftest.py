"""Fault tests: real engines (Debian's etcd and Redis) stopped, killed, paused and restarted under
traffic through real Envoys. Each test asserts invariants and records its timings; the figures are
printed at the end of the run (pytest's terminal summary)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.backend import EchoBackend  # noqa: E402

KEY, SECRET = "fault-app-key-1", "fault-app-secret-1-0123456789abcdef"
APPCODE = "0123456789ABCDEF0123456789ABCDEF"

# Figures recorded by the tests: (test, name, value), printed in the summary.
FIGURES = []


def figure(test, name, value):
    FIGURES.append((test, name, value))


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("fault figures")
    for test, name, value in FIGURES:
        terminalreporter.write_line(f"{test:<34} {name:<44} {value}")


@pytest.fixture(scope="session")
def backend():
    with EchoBackend() as b:
        yield b


RUNNING = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for e in RUNNING:
            rep.sections.append((f"envoy log (tail) {e.port}", e.log_text()[-5000:]))

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: the harness
sys.path.insert(0, HERE)

from observed import RUNNING  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("setup", "call") and rep.failed:
        for name, proc in RUNNING:
            rep.sections.append((f"{name} log (tail)", proc.log_text()[-5000:]))

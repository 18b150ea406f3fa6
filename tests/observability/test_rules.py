"""envoy/observability/alerts.yaml under Prometheus' own tools: `promtool check rules` accepts it, and
`promtool test rules` runs tests/observability/alerts.test.yaml (synthetic series: each alert fires when
its condition holds, after its `for`, and not otherwise). The unit tests are shown to see each threshold
and each `for`: a copy of the rules with one number changed must fail them."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

from harness.envoy import ROOT
from harness.prometheus import PROMTOOL

RULES = os.path.join(ROOT, "envoy", "observability", "alerts.yaml")
UNIT_TESTS = os.path.join(ROOT, "tests", "observability", "alerts.test.yaml")
ALERTS = ["CagateRefusalRateHigh", "CagateSignatureFailuresSpike", "CagateServiceBusy", "CagateRegistryStale",
          "CagateJwksFailing", "CagateClusterServiceDown", "CagateCircuitBreakerOpened"]


def promtool(*args, cwd=None):
    assert os.path.exists(PROMTOOL), f"{PROMTOOL} missing: run `make engines` (tests/tools/install-engines.sh)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def load_rules(path=RULES):
    with open(path) as f:
        return yaml.safe_load(f)


def test_check_rules():
    r = promtool("check", "rules", RULES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in r.stdout, r.stdout


def test_the_alerts():
    alerts = [rule for g in load_rules()["groups"] for rule in g["rules"]]
    assert [a["alert"] for a in alerts] == ALERTS
    for a in alerts:
        assert a["labels"]["severity"] in ("warning", "critical"), a
        assert a["annotations"]["summary"] and a["annotations"]["description"], a


def test_unit_tests():
    r = promtool("test", "rules", UNIT_TESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


def test_every_alert_is_unit_tested_firing_and_quiet():
    with open(UNIT_TESTS) as f:
        tests = yaml.safe_load(f)["tests"]
    firing, quiet = set(), set()
    for t in tests:
        for case in t["alert_rule_test"]:
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert firing == set(ALERTS) and quiet == set(ALERTS)


# (alert, what to replace (every occurrence) in its expr, or its `for`, replacement): each must break a unit test.
MUTATIONS = [
    ("CagateRefusalRateHigh", ") > 0.25", ") > 0.6"),
    ("CagateRefusalRateHigh", ") > 0.25", ") > 0.15"),
    ("CagateRefusalRateHigh", "[5m])) > 1", "[5m])) > 0.1"),
    ("CagateRefusalRateHigh", 'cagate_code!~"OK|D5.*|NO_RESPONSE"', 'cagate_code!~"OK|NO_RESPONSE"'),
    ("CagateRefusalRateHigh", 'cagate_code!~"OK|D5.*|NO_RESPONSE"', 'cagate_code!~"OK|D5.*"'),
    ("CagateSignatureFailuresSpike", "[5m])) > 0.5", "[5m])) > 2"),
    ("CagateSignatureFailuresSpike", "[5m])) > 0.5", "[5m])) > 0.1"),
    ("CagateSignatureFailuresSpike", "> 0.05", "> 0.005"),
    ("CagateSignatureFailuresSpike", 'cagate_code="A403IS"', 'cagate_code=~"A403IS|S403TE"'),
    ("CagateServiceBusy", "> 0", "> 10"),
    ("CagateRegistryStale", "> 300", "> 250"),
    ("CagateRegistryStale", "> 300", "> 600"),
    ("CagateJwksFailing", '"ok"}[15m]', '"ok"}[5m]'),
    ("CagateJwksFailing", 'failed|refused', 'failed'),
    ("CagateClusterServiceDown", "> 0.5", "> 0.05"),
    ("CagateClusterServiceDown", "> 0.5", "> 1.5"),
    ("CagateClusterServiceDown", '"checks"', '"calls"'),
    ("CagateCircuitBreakerOpened", "> 0", "> 1"),
    ("CagateCircuitBreakerOpened", "[5m]", "[15m]"),
] + [(a, "for", "0s") for a in ALERTS]


@pytest.mark.parametrize("alert,old,new", MUTATIONS, ids=[f"{a}:{o}->{n}" for a, o, n in MUTATIONS])
def test_unit_tests_see_the_change(tmp_path, alert, old, new):
    rules = load_rules()
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    if old == "for":
        rule["for"] = new
    else:
        assert old in rule["expr"], (alert, old)
        rule["expr"] = rule["expr"].replace(old, new)
    mutated = tmp_path / "envoy" / "observability" / "alerts.yaml"
    mutated.parent.mkdir(parents=True)
    mutated.write_text(yaml.safe_dump(rules, sort_keys=False))
    tests_dir = tmp_path / "tests" / "observability"
    tests_dir.mkdir(parents=True)
    shutil.copy(UNIT_TESTS, tests_dir / "alerts.test.yaml")  # its rule_files is relative: ../../envoy/...
    assert promtool("check", "rules", str(mutated)).returncode == 0
    r = promtool("test", "rules", str(tests_dir / "alerts.test.yaml"))
    out = r.stdout + r.stderr
    assert r.returncode != 0 and re.search(rf"alertname: {alert}\b", out), out[-3000:]

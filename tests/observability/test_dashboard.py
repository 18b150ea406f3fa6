"""envoy/observability/grafana-dashboard.json without Grafana: its shape (schema 38, every query through
the ${DS_PROMETHEUS} data source variable, panels on the 24-column grid without overlaps), the panels
it promises, and every query valid PromQL (promtool parses them as recording rules). That the queries
find the filter's series is tests/observability/test_prometheus.py's part, against Envoy."""
import json
import os
import re

import pytest
import yaml

from harness.envoy import ROOT
from harness.prometheus import PROMTOOL

DASHBOARD = os.path.join(ROOT, "envoy", "observability", "grafana-dashboard.json")
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# Grafana's variables, as a query sent to Prometheus sees them: all values selected, the rate window.
VARIABLES = {"$__rate_interval": "1m", "$job": ".*", "$api": ".*", "$stage": ".*"}


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels(dash=None):
    return [p for p in (dash or load())["panels"] if p["type"] != "row"]


def substitute(expr):
    for k in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(k, VARIABLES[k])
    assert "$" not in expr, expr
    return expr


def queries(dash=None):
    """(panel title, refId, expr with the variables substituted) of every panel target."""
    return [(p["title"], t["refId"], substitute(t["expr"])) for p in panels(dash) for t in p["targets"]]


def variable_queries(dash=None):
    """`label_values(selector, label)` of the query variables, as (name, selector, label)."""
    out = []
    for v in (dash or load())["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
            assert m, q
            out.append((v["name"], substitute(m.group(1)), m.group(2)))
    return out


def test_shape():
    dash = load()
    assert 36 <= dash["schemaVersion"] <= 39
    assert dash["uid"] == "cagate" and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    (ds,) = [v for v in dash["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == DS, v["name"]
    for p in panels(dash):
        assert p["datasource"] == DS, p["title"]
        assert p["description"], p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS and t["expr"], p["title"]


def test_grid_without_overlaps():
    cells = {}
    for p in load()["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_promised_panels():
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels()}
    wanted = {
        "Traffic by API and stage": ["cagate_requests", "cagate_api", "cagate_stage"],
        "Refusals by code": ["cagate_requests", "by (cagate_code)"],
        "Refusals by API": ["cagate_requests", "by (cagate_api"],
        "Refusals by app (top 10)": ["cagate_app_requests", "cagate_app"],
        "Signature failures vs clock skew": ['"A403IS"', '"S403TE"'],
        "Replay refusals": ["S403NU", "A403SV"],
        "Throttling": ["T429", "cagate_traffic_throttled"],
        "Backend failures": ['cagate_code=~"D5.*"'],
        "Filter latency": ["histogram_quantile(0.5,", "histogram_quantile(0.99,", "cagate_filter_us_bucket"],
        "Registry age": ["cagate_registry_age_seconds"],
        "Registry fetches": ["cagate_registry_fetches", "cagate_result"],
        "JWKS fetches": ["cagate_jwks", "cagate_plugin", "cagate_result"],
        "Cluster services": ["cagate_cluster", "errors|timeouts", "cagate_service"],
    }
    for title, parts in wanted.items():
        assert title in exprs, title
        for part in parts:
            assert part in exprs[title], (title, part)


def test_queries_are_promql(tmp_path):
    """promtool parses every query (and every variable's selector) as the expr of a recording rule."""
    import subprocess
    exprs = [e for _, _, e in queries()] + [sel for _, sel, _ in variable_queries()]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"cagate:dashboard_query_{i}", "expr": e}
                                                        for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    assert os.path.exists(PROMTOOL), "promtool missing: run `make engines`"
    r = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("var", ["job", "api", "stage"])
def test_variables(var):
    assert var in [n for n, _, _ in variable_queries()]

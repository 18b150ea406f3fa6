"""envoy/observability/stats-tags.json, the stats_config.stats_tags of every Envoy that runs cagate:
each of cagate's stat names, put through Envoy's tag extraction as Envoy does it, must come out as the
metric name and tags that the dashboard and the alert rules query.

Envoy's semantics (source/common/stats/tag_producer_impl.cc, tag_extractor_impl.cc), reproduced here:
- every extractor is tried on the full stat name (an extractor whose regex starts `^word\\.` only on
  names whose first segment is `word`), with a regex search (ECMAScript; Python's `re` with ASCII
  classes agrees on the constructs used);
- on a match, the first capture group is cut out of the name and the second (or, when the regex has
  only one, the first) is the tag's value; all cuts are applied together at the end;
- Envoy's own default extractors run too: the ones not tied to a first segment (`_rq_<code>` suffixes)
  must not touch cagate's names.
/stats/prometheus then names the metric: a stat in a custom namespace (`wasmcustom.`, where a Wasm
filter's stats live) loses the namespace and gets no `envoy_` prefix, and every character outside
[A-Za-z0-9_] becomes `_`: `wasmcustom.cagate.requests` is `cagate_requests{cagate_api=...}` (as
tests/e2e/test_traffic.py reads `cagate_traffic_throttled{plugin=...}` from a real Envoy)."""
import json
import os
import re

import pytest
import yaml

from harness.envoy import ROOT

TAGS_FILE = os.path.join(ROOT, "envoy", "observability", "stats-tags.json")

# Envoy's default extractors that are not tied to a first segment (well_known_names.cc).
ENVOY_UNPREFIXED_DEFAULTS = [
    {"tag_name": "envoy.response_code", "regex": r"_rq(_(\d{3}))$"},
    {"tag_name": "envoy.response_code_class", "regex": r"_rq(_(\dxx))$"},
]


def load_tags():
    with open(TAGS_FILE) as f:
        return json.load(f)


def _prefix(regex):
    """Envoy's extractRegexPrefix: `^word\\.` ties an extractor to names whose first segment is `word`."""
    m = re.match(r"\^([A-Za-z0-9_]+)\\\.", regex)
    return m.group(1) if m else None


def extract(name, tags):
    """(tag-extracted name, [(tag, value)]) as Envoy computes them."""
    cuts, out = [], []
    for t in list(tags) + ENVOY_UNPREFIXED_DEFAULTS:
        prefix = _prefix(t["regex"])
        if prefix and name.split(".", 1)[0] != prefix:
            continue
        m = re.compile(t["regex"], re.ASCII).search(name)
        if not m:
            continue
        value = m.group(2) if m.re.groups >= 2 else m.group(1)
        out.append((t["tag_name"], value))
        cuts.append(m.span(1))
    kept = "".join(c for i, c in enumerate(name) if not any(a <= i < b for a, b in cuts))
    return kept, out


def prometheus_name(extracted):
    """Envoy's /stats/prometheus name of a tag-extracted stat name in the `wasmcustom` namespace."""
    assert extracted.startswith("wasmcustom."), extracted
    return re.sub(r"[^A-Za-z0-9_]", "_", extracted[len("wasmcustom."):])


# The filter's stat names (as proxy_define_metric gets them, Envoy adds `wasmcustom.`), and what each
# must become in Prometheus.
CASES = [
    # per request: API (sanitized to [A-Za-z0-9_-]), stage, the X-Ca-Error-Code the client got or OK
    ("cagate.requests.orders.RELEASE.OK", "cagate_requests", {"cagate_api": "orders", "cagate_stage": "RELEASE", "cagate_code": "OK"}),
    ("cagate.requests.create-order.TEST.A403IS", "cagate_requests",
     {"cagate_api": "create-order", "cagate_stage": "TEST", "cagate_code": "A403IS"}),
    ("cagate.requests.my_api_2.PRE.D504TO", "cagate_requests", {"cagate_api": "my_api_2", "cagate_stage": "PRE", "cagate_code": "D504TO"}),
    ("cagate.requests.-.RELEASE.I404NF", "cagate_requests", {"cagate_api": "-", "cagate_stage": "RELEASE", "cagate_code": "I404NF"}),
    # no API matched (an empty name): the tag is empty, which Prometheus shows as no cagate_api label
    ("cagate.requests..RELEASE.I404NF", "cagate_requests", {"cagate_api": "", "cagate_stage": "RELEASE", "cagate_code": "I404NF"}),
    ("cagate.requests...A400MA", "cagate_requests", {"cagate_api": "", "cagate_stage": "", "cagate_code": "A400MA"}),
    ("cagate.requests.requests.OK.OK", "cagate_requests", {"cagate_api": "requests", "cagate_stage": "OK", "cagate_code": "OK"}),
    ("cagate.requests.x_rq_200.RELEASE.T429PA", "cagate_requests",
     {"cagate_api": "x_rq_200", "cagate_stage": "RELEASE", "cagate_code": "T429PA"}),
    # per app (when enabled)
    ("cagate.app_requests.10001.OK", "cagate_app_requests", {"cagate_app": "10001", "cagate_code": "OK"}),
    ("cagate.app_requests.app-x_1.T429PA", "cagate_app_requests", {"cagate_app": "app-x_1", "cagate_code": "T429PA"}),
    ("cagate.app_requests..A403IS", "cagate_app_requests", {"cagate_app": "", "cagate_code": "A403IS"}),
    # backend failures by code
    ("cagate.backend_failures.D504CO", "cagate_backend_failures", {"cagate_code": "D504CO"}),
    # the filter's time per request; the registry's gauges
    ("cagate.filter_us", "cagate_filter_us", {}),
    ("cagate.registry.age_seconds", "cagate_registry_age_seconds", {}),
    ("cagate.registry.version", "cagate_registry_version", {}),
    ("cagate.registry.apps", "cagate_registry_apps", {}),
    # JWKS fetches per jwtAuth plugin
    ("cagate.jwks.remote-jwt.ok", "cagate_jwks", {"cagate_plugin": "remote-jwt", "cagate_result": "ok"}),
    ("cagate.jwks.dead_jwt.failed", "cagate_jwks", {"cagate_plugin": "dead_jwt", "cagate_result": "failed"}),
    ("cagate.jwks.fetches.refused", "cagate_jwks", {"cagate_plugin": "fetches", "cagate_result": "refused"}),
    # registry fetches
    *[(f"cagate.registry.fetches.{r}", "cagate_registry_fetches", {"cagate_result": r})
      for r in ("changed", "unchanged", "failed", "invalid")],
    # cluster-mode services
    *[(f"cagate.cluster.{s}.{w}", "cagate_cluster", {"cagate_service": s, "cagate_result": w})
      for s in ("rls", "etcd")
      for w in ("calls", "retries", "errors", "timeouts", "over_limit", "replayed", "fail_open", "refused_unavailable",
                "batches", "batched")],
    # existing
    ("cagate.refused.A403IS", "cagate_refused", {"code": "A403IS"}),
    ("cagate.refused.X503BZ", "cagate_refused", {"code": "X503BZ"}),
    ("cagate.report_only_would_refuse.A403IS", "cagate_report_only_would_refuse", {"code": "A403IS"}),
    ("cagate.traffic.per-app.APP.throttled", "cagate_traffic_throttled", {"plugin": "per-app", "dimension": "APP"}),
    ("cagate.traffic.burst.API.admitted", "cagate_traffic_admitted", {"plugin": "burst", "dimension": "API"}),
    ("cagate.traffic.a.b.USER.admitted", "cagate_traffic_admitted", {"plugin": "a.b", "dimension": "USER"}),
    ("cagate.breaker_opened", "cagate_breaker_opened", {}),
    ("cagate.breaker_refused", "cagate_breaker_refused", {}),
    ("cagate.requests_allowed", "cagate_requests_allowed", {}),
    ("cagate.requests_refused", "cagate_requests_refused", {}),
    ("cagate.nonce_store_full", "cagate_nonce_store_full", {}),
]


@pytest.mark.parametrize("stat,metric,tags", CASES, ids=[c[0] for c in CASES])
def test_stat_becomes_metric_and_tags(stat, metric, tags):
    extracted, got = extract("wasmcustom." + stat, load_tags())
    assert len(got) == len(dict(got)), f"a tag extracted twice: {got}"
    assert dict(got) == tags
    assert prometheus_name(extracted) == metric


def test_one_label_set_per_metric():
    """Every stat of one metric carries the same tag names (one series family in Prometheus)."""
    families = {}
    for stat, metric, tags in CASES:
        families.setdefault(metric, set()).add(frozenset(tags))
    assert {m: len(s) for m, s in families.items() if len(s) > 1} == {}


def test_the_list_is_well_formed():
    tags = load_tags()
    names = [t["tag_name"] for t in tags]
    assert len(names) == len(set(names)), "one extractor per tag name (a tag shared by several metrics is one regex)"
    for t in tags:
        assert set(t) == {"tag_name", "regex"}, t
        assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", t["tag_name"]), "a Prometheus label name"
        rx = re.compile(t["regex"], re.ASCII)
        assert rx.groups >= 1, t  # the first group is cut, the second (if any) is the value
        assert _prefix(t["regex"]) == "wasmcustom", "tied to Wasm stats: Envoy skips it for every other stat"
    # the tags that existed before stay as they were (dashboards and tests read them)
    old = {"code": r"^wasmcustom\.cagate\.(?:refused|report_only_would_refuse)(\.(\w+))$",
           "plugin": r"^wasmcustom\.cagate\.traffic\.((.+)\.)(API|USER|APP)\.\w+$",
           "dimension": r"^wasmcustom\.cagate\.traffic\..+\.((API|USER|APP)\.)\w+$"}
    assert {t["tag_name"]: t["regex"] for t in tags if t["tag_name"] in old} == old


def test_no_other_stat_is_tagged():
    """Envoy's own stats and the filter's VM stats are left alone."""
    for stat in ["wasm.cagate.vm_reload", "wasm.envoy.wasm.runtime.v8.active", "http.gateway.downstream_rq_2xx",
                 "cluster.backend.upstream_rq_200", "cagate.requests.orders.RELEASE.OK",
                 "wasmcustom.other.requests.orders.RELEASE.OK"]:
        got = [t for t in extract(stat, load_tags())[1] if not t[0].startswith("envoy.")]
        assert got == [], (stat, got)


def _sample_stats_tags(path):
    with open(path) as f:
        (boot,) = [d for d in yaml.safe_load_all(f) if d is not None]
    return boot["stats_config"]["stats_tags"]


@pytest.mark.parametrize("sample", ["envoy/envoy.yaml", "envoy/compose/envoy.yaml"])
def test_samples_carry_the_list(sample):
    assert _sample_stats_tags(os.path.join(ROOT, sample)) == load_tags()


def test_istio_bootstrap_override_carries_the_list():
    with open(os.path.join(ROOT, "envoy", "istio", "observability.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    boot = json.loads(cm["data"]["custom_bootstrap.json"])
    assert boot["stats_config"]["stats_tags"] == load_tags()


def test_harness_uses_the_list():
    """tests/harness/envoy.py starts every test Envoy with these tags."""
    from harness.envoy import STATS_TAGS
    assert STATS_TAGS == load_tags()


def test_cli_generated_bootstrap_carries_the_list(tmp_path):
    """`cagate import --envoy` writes a bootstrap with these tags."""
    import subprocess
    cli = os.path.join(ROOT, "target", "release", "cagate")
    out = tmp_path / "envoy.yaml"
    r = subprocess.run([cli, "import", os.path.join(ROOT, "tests", "import", "aliyun-orders.yaml"), "-o",
                        str(tmp_path / "cagate.json"), "--envoy", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert _sample_stats_tags(out) == load_tags()

"""The observability parts of the sample configurations agree with each other and with
envoy/observability/: the access log of envoy/envoy.yaml (the record and x-request-id, no raw query or
header), the same in the compose sample, the Istio EnvoyFilter and the Istio access log provider; the
Istio manifests keep the wasmcustom.cagate stats and tag them; Envoy accepts it all."""
import json
import os
import re
import subprocess

import yaml

from harness.envoy import ENVOY, ROOT

SAMPLE = os.path.join(ROOT, "envoy", "envoy.yaml")
COMPOSE = os.path.join(ROOT, "envoy", "compose", "envoy.yaml")
ENVOYFILTER = os.path.join(ROOT, "envoy", "istio", "envoyfilter.yaml")
ISTIO_OBS = os.path.join(ROOT, "envoy", "istio", "observability.yaml")
OBS = os.path.join(ROOT, "envoy", "observability")
HCM = "envoy.filters.network.http_connection_manager"


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def hcm(path):
    (boot,) = docs(path)
    for listener in boot["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                if f["name"] == HCM:
                    return f["typed_config"]
    raise LookupError(path)


def json_format(access_log):
    (logger,) = access_log
    assert logger["name"] == "envoy.access_loggers.stdout"
    assert logger["typed_config"]["@type"].endswith(".StdoutAccessLog")
    return logger["typed_config"]["log_format"]["json_format"]


def test_sample_access_log_has_the_record_and_no_raw_request():
    fmt = json_format(hcm(SAMPLE)["access_log"])
    assert fmt["cagate"] == "%FILTER_STATE(wasm.cagate:PLAIN)%"
    assert fmt["x_request_id"] == "%REQ(X-REQUEST-ID)%"
    commands = re.findall(r"%([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?%", " ".join(fmt.values()))
    headers = {arg.upper() for cmd, arg in commands if cmd in ("REQ", "RESP", "TRAILER", "REQUEST_HEADER", "RESPONSE_HEADER")}
    assert headers == {"X-REQUEST-ID"}, "a request header or the path (:PATH holds the query: AppCode, JWT) is logged"
    assert not any(cmd.startswith(("REQUEST_", "DYNAMIC_METADATA", "CEL")) for cmd, _ in commands), commands


def test_compose_and_envoyfilter_log_the_same():
    sample = hcm(SAMPLE)["access_log"]
    assert hcm(COMPOSE)["access_log"] == sample
    (doc,) = docs(ENVOYFILTER)
    (merge,) = [p for p in doc["spec"]["configPatches"] if p["applyTo"] == "NETWORK_FILTER"]
    assert merge["patch"]["value"]["typed_config"]["access_log"] == sample


def test_istio_access_log_provider_is_the_samples_format():
    by_kind = {d["kind"]: d for d in docs(ISTIO_OBS)}
    providers = {p["name"]: p for p in by_kind["IstioOperator"]["spec"]["meshConfig"]["extensionProviders"]}
    file_log = providers["cagate-access-log"]["envoyFileAccessLog"]
    assert file_log["path"] == "/dev/stdout"
    assert file_log["logFormat"]["labels"] == json_format(hcm(SAMPLE)["access_log"])
    (logging,) = by_kind["Telemetry"]["spec"]["accessLogging"]
    assert [p["name"] for p in logging["providers"]] == ["cagate-access-log"]


def test_istio_keeps_and_tags_the_cagate_stats():
    by_kind = {d["kind"]: d for d in docs(ISTIO_OBS)}
    mesh = by_kind["IstioOperator"]["spec"]["meshConfig"]["defaultConfig"]
    assert "wasmcustom.cagate" in mesh["proxyStatsMatcher"]["inclusionPrefixes"]
    annotations = by_kind["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    per_pod = yaml.safe_load(annotations["proxy.istio.io/config"])
    assert "wasmcustom.cagate" in per_pod["proxyStatsMatcher"]["inclusionPrefixes"]
    cm = by_kind["ConfigMap"]
    assert annotations["sidecar.istio.io/bootstrapOverride"] == cm["metadata"]["name"]
    assert cm["metadata"]["namespace"] == by_kind["Deployment"]["metadata"]["namespace"]
    stats = json.loads(cm["data"]["custom_bootstrap.json"])["stats_config"]
    with open(os.path.join(OBS, "histogram-buckets.json")) as f:
        assert stats["histogram_bucket_settings"] == json.load(f)
    (envoyfilter,) = docs(ENVOYFILTER)
    assert by_kind["Deployment"]["spec"]["template"]["metadata"]["labels"].items() >= \
        envoyfilter["spec"]["workloadSelector"]["labels"].items(), "the annotated pods are the EnvoyFilter's"


def test_samples_bucket_the_filter_time():
    with open(os.path.join(OBS, "histogram-buckets.json")) as f:
        buckets = json.load(f)
    for path in (SAMPLE, COMPOSE):
        (boot,) = docs(path)
        assert boot["stats_config"]["histogram_bucket_settings"] == buckets, path


def test_envoy_accepts_the_istio_bootstrap_override(tmp_path):
    (cm,) = [d for d in docs(ISTIO_OBS) if d["kind"] == "ConfigMap"]
    boot = json.loads(cm["data"]["custom_bootstrap.json"])
    boot["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(boot))
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_envoy_accepts_the_sample():
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", "envoy/envoy.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

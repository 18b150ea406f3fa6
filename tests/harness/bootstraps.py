"""Envoy configuration read from the repository's own sample files, so that tests run what the samples
say rather than a copy of it: the connection-manager options of envoy/envoy.yaml (and the compose
copy), and the patches of the Istio EnvoyFilter (envoy/istio/envoyfilter.yaml).

Feed the results to `harness.envoy.Envoy(..., hcm_options=..., http_filters=[...])`."""
import copy
import os

import yaml

from harness.envoy import ROOT, WASM

SAMPLE = os.path.join(ROOT, "envoy", "envoy.yaml")
COMPOSE_SAMPLE = os.path.join(ROOT, "envoy", "compose", "envoy.yaml")
ENVOYFILTER = os.path.join(ROOT, "envoy", "istio", "envoyfilter.yaml")

HCM = "envoy.filters.network.http_connection_manager"
WASM_FILTER = "envoy.filters.http.wasm"
# HttpConnectionManager fields that are the listener's plumbing (the harness builds its own), not options.
PLUMBING = {"@type", "stat_prefix", "route_config", "rds", "http_filters"}


def load_documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def sample_hcm(path=SAMPLE):
    """The typed_config of the sample's (first) HttpConnectionManager."""
    (boot,) = load_documents(path)
    for listener in boot["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                if f["name"] == HCM:
                    return f["typed_config"]
    raise LookupError(f"{path}: no {HCM}")


def sample_hcm_options(path=SAMPLE):
    """The sample's connection-manager options (normalize_path, http_protocol_options, …)."""
    return {k: copy.deepcopy(v) for k, v in sample_hcm(path).items() if k not in PLUMBING}


def without_stream_error_option(options):
    """`options` less Envoy's "keep the connection after a 400" switches (both spellings)."""
    out = copy.deepcopy(options)
    out.pop("stream_error_on_invalid_http_message", None)
    http1 = out.get("http_protocol_options")
    if http1 is not None:
        http1.pop("override_stream_error_on_invalid_http_message", None)
        if not http1:
            del out["http_protocol_options"]
    return out


def keeps_connection_after_400(options):
    """Whether these HCM options make Envoy keep an HTTP/1.1 connection open after a local 400
    (the HTTP/1 override wins over the connection-manager-wide switch)."""
    override = options.get("http_protocol_options", {}).get("override_stream_error_on_invalid_http_message")
    if override is not None:
        return bool(override)
    return bool(options.get("stream_error_on_invalid_http_message", False))


def envoyfilter_patches(path=ENVOYFILTER, wasm=WASM):
    """The EnvoyFilter's patches as Envoy configuration: {"http_filter": the Wasm HTTP filter, its code
    pointed at the local build `wasm`; "hcm_options": the connection-manager fields of the MERGE patch;
    "listener": the listener fields of the LISTENER patch}. Checks on the way what Istio needs to
    place them: the kind, one context for all patches, the matches and the operations."""
    (doc,) = load_documents(path)
    assert (doc["apiVersion"], doc["kind"]) == ("networking.istio.io/v1alpha3", "EnvoyFilter"), path
    out = {}
    contexts = set()
    for p in doc["spec"]["configPatches"]:
        contexts.add(p["match"]["context"])
        op, value = p["patch"]["operation"], copy.deepcopy(p["patch"]["value"])
        if p["applyTo"] == "HTTP_FILTER":
            target = p["match"]["listener"]["filterChain"]["filter"]
            assert target["name"] == HCM and target["subFilter"]["name"] == "envoy.filters.http.router", p
            assert op == "INSERT_BEFORE", p
            out["http_filter"] = value
        elif p["applyTo"] == "NETWORK_FILTER":
            assert p["match"]["listener"]["filterChain"]["filter"]["name"] == HCM, p
            assert op == "MERGE", p
            typed = value["typed_config"]
            assert typed.pop("@type").endswith(".HttpConnectionManager"), p
            out["hcm_options"] = typed
        elif p["applyTo"] == "LISTENER":
            assert op == "MERGE", p
            out["listener"] = value
        else:
            raise AssertionError(f"unexpected patch {p}")
    assert contexts == {"SIDECAR_INBOUND"}, contexts
    assert set(out) == {"http_filter", "hcm_options", "listener"}, f"{path}: missing a patch"
    assert out["http_filter"]["name"] == WASM_FILTER, out["http_filter"]
    code = out["http_filter"]["typed_config"]["config"]["vm_config"]["code"]
    assert "local" in code, "the manifest's code must be a local file (the remote form is in its comments)"
    code["local"]["filename"] = wasm
    return out

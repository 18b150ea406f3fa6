"""Envoy's admin in the sample configurations (envoy/): it drains, stops and reloads Envoy and dumps its
configuration with the secrets in it, so it is on loopback only, and the docker compose stack
publishes nothing of it beyond the host's loopback. YAML only: no Envoy, no Docker needed."""
import glob
import ipaddress
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVOY_DIR = os.path.join(ROOT, "envoy")
COMPOSE = os.path.join(ENVOY_DIR, "docker-compose.yml")
SAMPLES = sorted(p for ext in ("yaml", "yml") for p in glob.glob(os.path.join(ENVOY_DIR, "**", f"*.{ext}"), recursive=True))
# The bootstraps that must be found (so that an empty walk cannot pass).
BOOTSTRAPS = {os.path.join(ENVOY_DIR, "envoy.yaml"), os.path.join(ENVOY_DIR, "compose", "envoy.yaml")}
# What a listener may forward to the admin: read-only, exact paths.
READ_ONLY_ADMIN_PATHS = {"/ready", "/stats/prometheus"}
HCM = "envoy.filters.network.http_connection_manager"


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def is_loopback(host):
    if str(host).lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def admins(node):
    """Every `admin: {address: …}` in a document, wherever it is (a bootstrap, or one inside an Istio
    resource or a ConfigMap as text is not expected here, but is looked for)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "admin" and isinstance(v, dict) and "address" in v:
                yield v
            yield from admins(v)
    elif isinstance(node, list):
        for v in node:
            yield from admins(v)
    elif isinstance(node, str) and "admin:" in node:
        try:
            inner = list(yaml.safe_load_all(node))
        except yaml.YAMLError:
            return
        for d in inner:
            if isinstance(d, (dict, list)):
                yield from admins(d)


def admin_bound(admin):
    """(host, port) the admin listens on; a pipe (Unix socket) is local: ("pipe", path)."""
    address = admin["address"]
    if "pipe" in address:
        return "pipe", address["pipe"]["path"]
    sa = address["socket_address"]
    return sa["address"], sa.get("port_value")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_sample_binds_the_admin_to_loopback(path):
    for doc in documents(path):
        for admin in admins(doc):
            host, _ = admin_bound(admin)
            assert host == "pipe" or is_loopback(host), f"{path}: Envoy's admin on {host}, not on loopback"


def test_the_bootstraps_have_an_admin():
    found = {p for p in SAMPLES for d in documents(p) if any(True for _ in admins(d))}
    assert BOOTSTRAPS <= found, f"no admin found in {BOOTSTRAPS - found}"


def interpolate(text):
    """Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR}`, with the defaults (no environment)."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", str(text))


def published(port):
    """A compose `ports` entry as (host_ip, host_port, container_port); host_ip "" is every interface."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), interpolate(port.get("published", "")), int(interpolate(port["target"]))
    text = interpolate(port).split("/")[0]
    m = re.fullmatch(r"(?:(\[[^\]]+\]|[^:]+):)?(?:([\d-]*):)?(\d+)", text)
    assert m, f"cannot read the ports entry {port!r}"
    host_ip, host_port, container = m.groups()
    if host_ip is not None and host_port is None:  # "HOST_PORT:CONTAINER"
        host_ip, host_port = None, host_ip
    return (host_ip or "").strip("[]"), host_port or "", int(container)


def test_published_port_parsing():
    assert published("9901") == ("", "", 9901)
    assert published("${ADMIN_PORT:-9901}:9901") == ("", "9901", 9901)
    assert published("0.0.0.0:9901:9901") == ("0.0.0.0", "9901", 9901)
    assert published("127.0.0.1:${ADMIN_PORT:-9901}:9902") == ("127.0.0.1", "9901", 9902)
    assert published("[::1]:9901:9901/tcp") == ("::1", "9901", 9901)
    assert published({"target": 9901, "published": "9901", "host_ip": "127.0.0.1"}) == ("127.0.0.1", "9901", 9901)


def mounted_bootstraps(service):
    """The sample files a compose service mounts (short volume syntax, paths relative to envoy/)."""
    for v in service.get("volumes", []) or []:
        source = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
        path = os.path.normpath(os.path.join(ENVOY_DIR, interpolate(source or "")))
        if path.endswith((".yaml", ".yml")) and os.path.isfile(path):
            yield path


def admin_ports(bootstrap):
    """The container ports that reach the admin: the admin's own, and every listener routing to a
    cluster whose endpoint is the admin (with the paths it forwards there)."""
    (boot,) = documents(bootstrap)
    host, port = admin_bound(boot["admin"])
    resources = boot.get("static_resources", {})
    to_admin = set()
    for c in resources.get("clusters", []):
        for e in c.get("load_assignment", {}).get("endpoints", []):
            for lb in e.get("lb_endpoints", []):
                sa = lb["endpoint"]["address"].get("socket_address", {})
                if sa.get("port_value") == port and (sa.get("address") == host or is_loopback(sa.get("address"))):
                    to_admin.add(c["name"])
    ports = {port: None}
    for listener in resources.get("listeners", []):
        lport = listener["address"]["socket_address"]["port_value"]
        for chain in listener.get("filter_chains", []):
            for f in chain.get("filters", []):
                if f.get("name") != HCM:
                    continue
                for vh in f["typed_config"].get("route_config", {}).get("virtual_hosts", []):
                    for r in vh.get("routes", []):
                        if r.get("route", {}).get("cluster") in to_admin:
                            ports.setdefault(lport, []).append(r["match"])
    return ports


def test_compose_publishes_the_admin_on_loopback_only():
    (compose,) = documents(COMPOSE)
    checked = 0
    for name, service in compose["services"].items():
        for bootstrap in mounted_bootstraps(service):
            reach = admin_ports(bootstrap)
            for entry in service.get("ports", []) or []:
                host_ip, _, container = published(entry)
                if container not in reach:
                    continue
                checked += 1
                assert host_ip and is_loopback(host_ip), (
                    f"{name}: {entry!r} publishes Envoy's admin (container port {container}) on every host interface")
                assert reach[container] is not None, (
                    f"{name}: {entry!r} publishes the admin itself, which listens on the container's loopback")
    assert checked, "the compose stack publishes no admin port (readiness): update this test if that is meant"


def test_what_reaches_the_admin_is_read_only():
    """A listener that forwards to the admin forwards only exact, read-only paths, GET only."""
    for bootstrap in BOOTSTRAPS:
        for port, matches in admin_ports(bootstrap).items():
            for m in matches or []:
                assert m.get("path") in READ_ONLY_ADMIN_PATHS and set(m) <= {"path", "headers"}, (bootstrap, port, m)
                methods = [h for h in m.get("headers", []) if h.get("name") == ":method"]
                assert [h.get("string_match", {}).get("exact") for h in methods] == ["GET"], (bootstrap, port, m)

"""`cagate import`: the sample Aliyun Swagger export becomes a configuration `cagate check` accepts and
an Envoy bootstrap Envoy accepts; documents made to fail exit 1 with the paths of their errors; a real
Envoy started from the generated bootstrap routes signed requests to the mapped backend. And
`cagate apps new`."""
import json
import os
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from conftest import KEY1, SECRET1, call
from harness import signer
from harness.envoy import ENVOY, ROOT, WASM, Envoy

CLI = os.path.join(ROOT, "target", "release", "cagate")
SAMPLES = os.path.join(ROOT, "tests", "import")
SAMPLE = os.path.join(SAMPLES, "aliyun-orders.yaml")
FC_WARNING = "warning: paths./orders/{orderId}/invoice.get.x-aliyun-apigateway-backend: type FC is not supported"


def run(*args, cwd=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, cwd=cwd)


def test_the_sample_export_imports(tmp_path):
    out, env = tmp_path / "cagate.json", tmp_path / "envoy.yaml"
    r = run("import", SAMPLE, "-o", str(out), "--envoy", str(env))
    assert r.returncode == 0, r.stderr
    assert FC_WARNING in r.stderr
    assert "backend_orders_internal_8080  STRICT_DNS orders.internal:8080" in r.stderr
    cfg = json.loads(out.read_text())
    assert [a["name"] for a in cfg["apis"]] == ["getOrder", "createOrder", "health"]
    get = cfg["apis"][0]
    assert get["path"] == "/orders/[orderId]" and get["requestMode"] == "MAPPING"
    assert {"name": "fields", "location": "QUERY", "maxLength": 64, "backendName": "select", "backendLocation": "QUERY",
            "description": "Which fields to return, comma-separated"} in get["parameters"]
    assert get["backend"]["cluster"] == "backend_orders_internal_8080"
    assert get["backend"]["path"] == "/v1/orders/[orderId]"
    assert cfg["apis"][2]["backend"]["type"] == "MOCK"
    for f in (out, env):
        c = run("check", str(f))
        assert c.returncode == 0 and "valid (0 apps, 3 apis" in c.stdout, c.stdout
    # Envoy itself accepts the bootstrap (the wasm path is relative to the repository).
    v = subprocess.run([ENVOY, "--mode", "validate", "-c", str(env)], cwd=ROOT, capture_output=True, text=True)
    assert v.returncode == 0, v.stdout[-2000:] + v.stderr[-2000:]
    assert "Deprecated field" not in v.stdout + v.stderr, v.stdout[-2000:] + v.stderr[-2000:]
    boot = yaml.safe_load(env.read_text())
    monitors = boot["overload_manager"]["resource_monitors"]
    assert [m["name"] for m in monitors] == ["envoy.resource_monitors.global_downstream_max_connections"]


def test_standard_output_and_json_input(tmp_path):
    as_json = tmp_path / "orders.json"
    as_json.write_text(json.dumps(yaml.safe_load(open(SAMPLE))))
    r = run("import", str(as_json))
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert sorted(a["name"] for a in cfg["apis"]) == ["createOrder", "getOrder", "health"]
    assert FC_WARNING in r.stderr


@pytest.mark.parametrize("name, expected", [
    ("bad-openapi3.yaml", ["openapi: an OpenAPI 3.0.3 document: only Swagger 2.0 documents can be imported"]),
    ("bad-path-param.yaml", ["paths./orders/{orderId}.get: the path parameter {orderId} has no `in: path` parameter",
                             "paths./orders/{orderId}.get.parameters[0].name: no {id} segment in the path"]),
    ("bad-backend.yaml", ["paths./a.get.x-aliyun-apigateway-backend.type: missing",
                          "paths./b.get.x-aliyun-apigateway-backend.type: unknown backend type GRPC",
                          "paths./c.get.x-aliyun-apigateway-backend.address: missing",
                          "paths./d.get.x-aliyun-apigateway-backend: must be an object"]),
])
def test_bad_documents_fail_with_paths(tmp_path, name, expected):
    out = tmp_path / "out.json"
    r = run("import", os.path.join(SAMPLES, name), "-o", str(out), "--envoy", str(tmp_path / "envoy.yaml"))
    assert r.returncode == 1, r.stderr
    for e in expected:
        assert f"error: {e}" in r.stderr, r.stderr
    assert "nothing written" in r.stderr
    assert not out.exists() and not (tmp_path / "envoy.yaml").exists()


def test_stage_variables(tmp_path):
    doc = tmp_path / "vpc.yaml"
    doc.write_text(open(SAMPLE).read().replace("type: HTTP\n        address: 'http://orders.internal:8080'",
                                              "type: HTTP-VPC\n        vpcAccessName: '#orders#'"))
    r = run("import", str(doc), "--stage-var", "RELEASE:orders=http://orders-prod:8080")
    assert r.returncode == 0, r.stderr  # published in RELEASE only
    r = run("import", str(doc), "--stage-var", "RELEASE:orders=http://orders-prod:8080", "--stage-var", "TEST:orders=orders-test")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["stageVariables"] == {"RELEASE": {"orders": "backend_orders_prod_8080", "orders.host": "orders-prod:8080"},
                                     "TEST": {"orders": "orders-test"}}
    assert "host" not in cfg["apis"][0]["backend"], "TEST names a cluster: the client's Host in every stage"
    assert "#orders# names a cluster, not a URL, in TEST" in r.stderr
    assert cfg["apis"][0]["stages"] == ["RELEASE", "TEST"] and cfg["apis"][0]["backend"]["cluster"] == "#orders#"
    r = run("import", str(doc), "--stage", "PRE", "--stage-var", "RELEASE:orders=o")
    assert r.returncode == 1
    assert ("error: paths./orders/{orderId}.get.x-aliyun-apigateway-backend: the stage variable #orders# has no value"
            " in stage PRE: add --stage-var PRE:orders=CLUSTER") in r.stderr
    assert run("import", str(doc), "--stage-var", "RELEASE-orders").returncode == 2


def test_reimport_keeps_apps_and_grants(tmp_path):
    first = tmp_path / "cagate.json"
    existing = {"apps": [{"appId": 10001, "name": "demo", "appKey": KEY1, "appSecret": SECRET1}],
                "apis": [{"name": "getOrder", "authorizations": [{"appId": 10001}]}, {"name": "old", "path": "/old"}]}
    (tmp_path / "existing.json").write_text(json.dumps(existing))
    r = run("import", SAMPLE, "--merge", str(tmp_path / "existing.json"), "-o", str(first))
    assert r.returncode == 0, r.stderr
    assert "the API old is not in the Swagger document: removed" in r.stderr
    # The output merged again with the same document: nothing lost.
    r = run("import", SAMPLE, "--merge", str(first), "-o", str(tmp_path / "again.json"))
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    assert again == json.loads(first.read_text())
    assert again["apps"][0]["appKey"] == KEY1
    assert again["apis"][0]["authorizations"] == [{"appId": 10001}]


def _bootstrap_for(envoy, backend_port, path):
    """The generated bootstrap with its backend cluster pointed at the local echo backend."""
    boot = yaml.safe_load(open(path))
    (cluster,) = [c for c in boot["static_resources"]["clusters"] if c["name"] == "backend_orders_internal_8080"]
    cluster["type"] = "STATIC"
    cluster.pop("dns_lookup_family", None)
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": backend_port}
    with open(envoy.config_path, "w") as f:
        json.dump(boot, f)


def test_a_real_envoy_from_the_generated_bootstrap(tmp_path, backend):
    grants = {"apps": [{"appId": 10001, "name": "demo", "appKey": KEY1, "appSecret": SECRET1}],
              "apis": [{"name": "getOrder", "authorizations": [{"appId": 10001}]},
                       {"name": "createOrder", "authorizations": [{"appId": 10001}]}]}
    (tmp_path / "apps.json").write_text(json.dumps(grants))
    e = Envoy({}, backend.port)  # free ports, log and lifecycle; its bootstrap is replaced below
    env = tmp_path / "envoy.yaml"
    r = run("import", SAMPLE, "--merge", str(tmp_path / "apps.json"), "-o", str(tmp_path / "cagate.json"),
            "--envoy", str(env), "--listen", f"127.0.0.1:{e.port}", "--admin", f"127.0.0.1:{e.admin_port}", "--wasm", WASM)
    assert r.returncode == 0, r.stderr
    _bootstrap_for(e, backend.port, env)
    with e:
        path = "/orders/42?fields=items"
        resp = call(e.port, "GET", path, signer.sign("GET", path, KEY1, SECRET1))
        assert resp.status == 200, (resp, e.log_text()[-3000:])
        seen = resp.json()
        url = urlsplit(seen["path"])
        assert url.path == "/v1/orders/42", seen
        assert parse_qs(url.query) == {"select": ["items"]}, seen
        assert seen["headers"]["x-client-ip"] == ["127.0.0.1"]
        assert seen["headers"]["x-app-id"] == ["10001"]
        assert seen["headers"]["host"] == ["orders.internal:8080"]

        body = "sku=A-1&quantity=2&junk=1"
        h = signer.sign("POST", "/orders", KEY1, SECRET1,
                        headers={"content-type": "application/x-www-form-urlencoded"}, body=body)
        resp = call(e.port, "POST", "/orders", h, body)
        assert resp.status == 200, resp
        assert resp.json()["path"] == "/v1/orders" and resp.json()["method"] == "POST"
        assert "sku=A-1" in resp.json()["body"]

        resp = call(e.port, "GET", "/health")
        assert resp.status == 200 and resp.json() == {"status": "ok"}, resp

        # The Function Compute operation was not imported.
        resp = call(e.port, "GET", "/orders/42/invoice", signer.sign("GET", "/orders/42/invoice", KEY1, SECRET1))
        assert resp.status == 404 and resp.code == "I404NF", resp


APP_ID = re.compile(r"^[1-9][0-9]{7}$")


def test_apps_new(tmp_path):
    a, b = (json.loads(run("apps", "new").stdout) for _ in range(2))
    assert list(a) == ["appId", "name", "appKey", "appSecret", "appCodes"]
    assert APP_ID.match(str(a["appId"])) and a["name"] == f"app-{a['appId']}"
    assert re.fullmatch(r"[0-9A-Za-z]{24}", a["appKey"]) and re.fullmatch(r"[0-9A-Za-z]{32}", a["appSecret"])
    assert re.fullmatch(r"[0-9A-F]{32}", a["appCodes"][0])
    assert all(a[k] != b[k] for k in ("appId", "appKey", "appSecret", "appCodes"))
    named = json.loads(run("apps", "new", "--name", "billing", "--app-id", "20001").stdout)
    assert (named["appId"], named["name"]) == (20001, "billing")
    cfg = tmp_path / "cagate.json"
    cfg.write_text(json.dumps({"apps": [a, b, named], "apis": [
        {"name": "x", "method": "GET", "path": "/x", "authorizations": [{"appId": named["appId"]}]}]}))
    r = run("check", str(cfg))
    assert r.returncode == 0 and "valid (3 apps" in r.stdout, r.stdout
    assert run("apps", "new", "--app-id", "not valid").returncode == 2


@pytest.mark.parametrize("cmd", [["import"], ["apps", "new"]])
def test_help_has_examples(cmd):
    r = run(*cmd, "--help")
    assert r.returncode == 0 and "Examples:" in r.stdout


def test_plugins_and_their_bindings_import(tmp_path):
    """Aliyun's DescribePlugins and DescribePluginApis answers become plugins and bindings."""
    out = tmp_path / "cagate.json"
    plugins = os.path.join(SAMPLES, "aliyun-plugins.json")
    apis = os.path.join(SAMPLES, "aliyun-plugin-apis.json")
    r = run("import", SAMPLE, "-o", str(out), "--plugins", plugins,
            "--plugin-apis", f"9a3f0c6e2b7d4e1f8a5c3b2d1e0f9a8b={apis}", "--plugin-apis", f"rewrite={apis}")
    assert r.returncode == 0, r.stderr
    assert "no imported API is named listInvoices" in r.stderr
    cfg = json.loads(out.read_text())
    assert [(p["name"], p["type"]) for p in cfg["plugins"]] == [("order-limits", "trafficControl"), ("rewrite", "transformer")]
    by_name = {a["name"]: a for a in cfg["apis"]}
    assert by_name["getOrder"]["plugins"] == [{"plugin": "order-limits", "stages": ["RELEASE"]},
                                              {"plugin": "rewrite", "stages": ["RELEASE"]}]
    assert "plugins" not in by_name["health"]
    c = run("check", str(out))
    assert c.returncode == 0 and "valid (0 apps, 3 apis" in c.stdout, c.stdout + c.stderr


def test_a_plugin_type_cagate_does_not_support_fails_the_import(tmp_path):
    answer = tmp_path / "plugins.json"
    answer.write_text(json.dumps({"Plugins": {"PluginAttribute": [
        {"PluginId": "c1", "PluginName": "params", "PluginType": "parameterAccessControl", "PluginData": "{}"}]}}))
    out = tmp_path / "cagate.json"
    r = run("import", SAMPLE, "-o", str(out), "--plugins", str(answer))
    assert r.returncode == 1, r.stderr
    assert "Plugins.PluginAttribute[0].PluginType: plugin params: plugin type parameterAccessControl is not supported" in r.stderr, r.stderr
    assert not out.exists(), "nothing is written"

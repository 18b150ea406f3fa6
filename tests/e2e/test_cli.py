"""The `cagate` command-line tool: signing (against the spec's worked example and a real Envoy),
string-to-sign comparison, configuration checks."""
import copy
import json
import os
import subprocess

import pytest
import yaml

from conftest import GATE_CONFIG, KEY1, SECRET1
from harness.envoy import ROOT

CLI = os.environ.get("CAGATE_CLI", os.path.join(ROOT, "target", "release", "cagate"))


def run(*args, env=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env)


def test_sign_reproduces_the_worked_example():
    r = run("sign", "--key", "test-app-key-1", "--secret", "test-app-secret-1-0123456789abcdef", "-X", "POST",
            "-H", "Accept: application/json; charset=utf-8",
            "-H", "Content-Type: application/x-www-form-urlencoded; charset=utf-8",
            "-H", "Date: Tue, 14 Nov 2023 22:16:46 GMT",
            "-H", "x-ca-nonce: 00000000-0000-4000-a000-000000000006",
            "-H", "x-ca-timestamp: 1700000206000",
            "-d", "nick=%E5%B0%8F+%E6%98%8E&password=123456789&username=xiaoming",
            "http://example.com/http2test/test?param1=test")
    assert r.returncode == 0, r.stderr
    assert "x-ca-signature: 2IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns=" in r.stdout.splitlines()


def test_sign_send_passes_the_real_gateway(gate):
    env = dict(os.environ, CA_APP_KEY=KEY1, CA_APP_SECRET=SECRET1)
    r = run("sign", "--send", f"http://127.0.0.1:{gate.port}/orders/5?a=1&b=%E4%B8%AD", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("HTTP/1.1 200")
    body = json.loads(r.stdout.split("\n\n", 1)[1])
    assert body["headers"]["x-ca-app-id"] == ["10001"]
    r = run("sign", "--send", "-X", "PUT", "-H", "Content-Type: application/json", "-d", '{"x":1}',
            f"http://127.0.0.1:{gate.port}/upload", env=env)
    assert r.returncode == 0 and "content-md5" in r.stdout.lower(), r.stdout
    r = run("sign", "--send", "--key", KEY1, "--secret", "wrong", f"http://127.0.0.1:{gate.port}/orders/5")
    assert r.returncode == 1 and "x-ca-error-code: a403is" in r.stdout.lower()
    assert "s3cr3t-env" not in run("sign", "--help", env=dict(os.environ, CA_APP_SECRET="s3cr3t-env")).stdout
    # A header the caller asks to sign is signed (a changed value then fails), and its own Host is sent once.
    r = run("sign", "--send", "-H", "X-User: u1", "-H", "X-Ca-Signature-Headers: X-User", "-H", f"Host: 127.0.0.1:{gate.port}",
            f"http://127.0.0.1:{gate.port}/orders/5", env=env)
    assert r.returncode == 0 and r.stdout.startswith("HTTP/1.1 200"), r.stdout + r.stderr
    seen = json.loads(r.stdout.split("\n\n", 1)[1])["headers"]
    assert "X-User" in seen["x-ca-signature-headers"][0].split(",") and len(seen["host"]) == 1, seen


def test_sign_curl_works(gate):
    r = run("sign", "--curl", "--key", KEY1, "--secret", SECRET1, f"http://127.0.0.1:{gate.port}/orders/6")
    out = subprocess.run(["bash", "-c", r.stdout.replace("curl -i", "curl -s -o /dev/null -w '%{http_code}'")],
                         capture_output=True, text=True)
    assert out.stdout == "200", (r.stdout, out)


def test_string_to_sign_finds_the_difference():
    args = ["string-to-sign", "-H", "X-Ca-Key: k", "-H", "X-Ca-Signature-Headers: x-ca-key", "http://h/orders/7?b=2&a=1"]
    r = run(*args)
    assert r.returncode == 0
    assert "GET#####x-ca-key:k#/orders/7?a=1&b=2" in r.stdout
    r = run(*args, "--server", "Invalid Signature, Server StringToSign:`GET#####x-ca-key:k#/orders/8?a=1&b=2`")
    assert r.returncode == 1
    assert "First difference at character 27 (line 7)" in r.stdout, r.stdout
    r = run(*args, "--server", "GET#####x-ca-key:k#/orders/7?a=1&b=2")
    assert r.returncode == 0 and "the same" in r.stdout


def test_check_sample_configurations():
    for f in ["envoy/envoy.yaml", "envoy/compose/envoy.yaml", "envoy/istio/wasmplugin.yaml"]:
        r = run("check", os.path.join(ROOT, f))
        assert r.returncode == 0, (f, r.stdout, r.stderr)
        assert "valid" in r.stdout


def test_check_warns_on_the_envoy_settings_the_filter_needs(tmp_path):
    text = open(os.path.join(ROOT, "envoy/envoy.yaml")).read()
    assert "warning" not in run("check", os.path.join(ROOT, "envoy/envoy.yaml")).stdout
    bad = tmp_path / "envoy.yaml"
    bad.write_text(text.replace("allow_on_headers_stop_iteration: true", "allow_on_headers_stop_iteration: false")
                   .replace("per_connection_buffer_limit_bytes: 16777216", "per_connection_buffer_limit_bytes: 1024"))
    r = run("check", str(bad))
    assert r.returncode == 0, r.stdout
    assert "lacks allow_on_headers_stop_iteration: true" in r.stdout, r.stdout
    assert "per_connection_buffer_limit_bytes (1024) is below maxBodyBytes (8388608)" in r.stdout, r.stdout


def test_check_names_a_cluster_the_bootstrap_lacks(tmp_path):
    boot = yaml.safe_load(open(os.path.join(ROOT, "envoy/envoy.yaml")))
    wasm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][1]["typed_config"]
    config = json.loads(wasm["config"]["configuration"]["value"])
    config["apis"][0]["backend"] = {"type": "HTTP", "cluster": "backend"}
    config["apis"][1]["backend"] = {"type": "HTTP", "cluster": "orders-v2"}
    wasm["config"]["configuration"]["value"] = json.dumps(config)
    f = tmp_path / "envoy.yaml"
    f.write_text(yaml.safe_dump(boot))
    r = run("check", str(f))
    assert r.returncode == 0, r.stdout
    assert f"the cluster orders-v2 (API {config['apis'][1]['name']}, stage RELEASE) is not in static_resources.clusters" in r.stdout, r.stdout
    assert "the cluster backend " not in r.stdout, r.stdout


def test_check_a_registry_document_over_its_static_configuration(tmp_path):
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"version": 1, "apps": [{"appId": 30001, "appKey": "reg-key-30001", "appSecret": "reg-secret-30001-0123456789"}],
                               "authorizations": [{"appId": 30001, "api": "nope", "stage": "RELEASE"}]}))
    r = run("check", str(reg))
    assert r.returncode == 0 and "API names, stages and static apps not checked: give --config" in r.stdout, r.stdout
    r = run("check", str(reg), "--config", os.path.join(ROOT, "envoy/envoy.yaml"))
    assert r.returncode == 1 and "authorizations[0].api: unknown API nope" in r.stdout, r.stdout
    reg.write_text(reg.read_text().replace('"nope"', '"orders"'))
    r = run("check", str(reg), "--config", os.path.join(ROOT, "envoy/envoy.yaml"))
    assert r.returncode == 0 and "valid registry document" in r.stdout, r.stdout
    assert "reg-secret" not in r.stdout


def test_check_lists_every_problem_and_no_secret(tmp_path):
    bad = copy.deepcopy(GATE_CONFIG)
    bad["apis"][0]["method"] = "FETCH"
    bad["apps"][1]["appKey"] = bad["apps"][0]["appKey"]
    bad["apis"][1]["authorizations"] = [{"appId": 424242}]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    r = run("check", str(p))
    assert r.returncode == 1
    assert "3 problem(s)" in r.stdout
    for expected in ["apis[0].method: unknown method FETCH", "apps[1].appKey: duplicate appKey",
                     "apis[1].authorizations[0].appId: unknown app 424242"]:
        assert expected in r.stdout
    assert SECRET1 not in r.stdout and "secret" not in r.stdout.lower()


@pytest.mark.parametrize("cmd", ["sign", "string-to-sign", "check"])
def test_help_has_examples(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0 and "Examples:" in r.stdout


@pytest.mark.parametrize("sample", ["envoy/envoy.yaml", "envoy/envoy-native.yaml"])
def test_sample_envoy_config_is_valid_for_envoy(sample):
    from harness.envoy import ENVOY, NATIVE_DIR
    env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=NATIVE_DIR)
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", sample], cwd=ROOT, capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # what a user starting the sample would otherwise read as a warning on every start
    assert "Deprecated field" not in out, out[-4000:]

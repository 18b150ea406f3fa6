"""The docker compose stack users run (envoy/docker-compose.yml), with locally built images: signed
request admitted and echoed, bad signature, AppCode, nonce replay, and what the host reaches of Envoy's
admin (readiness and metrics on its loopback, nothing that drains, stops or dumps). Always torn down."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from conftest import call  # noqa: E402
from harness.envoy import free_port  # noqa: E402
from harness.signer import sign  # noqa: E402

KEY, SECRET = "test-app-key-1", "test-app-secret-1-0123456789abcdef"
COMPOSE_FILE = os.path.join(ROOT, "envoy", "docker-compose.yml")
# The running stack: its compose command, environment and published admin port (set by `stack`).
STACK = {}


def compose_cmd():
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed")


@pytest.fixture(scope="module")
def stack():
    subprocess.run(["bash", os.path.join(HERE, "images.sh")], check=True)
    port, admin = free_port(), free_port()
    env = dict(os.environ, ENVOY_IMAGE="cagate-envoy:local", BACKEND_IMAGE="cagate-echo:local",
               GATEWAY_PORT=str(port), ADMIN_PORT=str(admin))
    project = f"cagatetest{os.getpid()}"
    cmd = compose_cmd() + ["-f", COMPOSE_FILE, "-p", project]
    try:
        subprocess.run(cmd + ["up", "-d"], env=env, check=True, capture_output=True)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    logs = subprocess.run(cmd + ["logs"], env=env, capture_output=True, text=True).stdout
                    pytest.fail(f"the stack did not become ready:\n{logs[-4000:]}")
                time.sleep(0.3)
        STACK.update(cmd=cmd, env=env, admin=admin)
        yield port
    finally:
        logs = subprocess.run(cmd + ["logs", "--tail", "50"], env=env, capture_output=True, text=True).stdout
        print(logs[-3000:])
        subprocess.run(cmd + ["down", "-v", "--remove-orphans"], env=env, capture_output=True)


def test_signed_request_admitted_and_echoed(stack):
    r = call(stack, "GET", "/orders/42?expand=items", sign("GET", "/orders/42?expand=items", KEY, SECRET))
    assert r.status == 200, r
    echoed = json.loads(r.body)
    assert echoed["headers"]["x-ca-app-id"] == "10001"
    assert echoed["headers"]["x-ca-api-name"] == "orders"
    assert echoed["headers"]["x-ca-request-id"] == r.header("x-ca-request-id")


def test_bad_signature_refused(stack):
    r = call(stack, "GET", "/orders/42", sign("GET", "/orders/42", KEY, "wrong"))
    assert (r.status, r.code) == (403, "A403IS")
    assert r.header("x-ca-error-message").startswith("Invalid Signature, Server StringToSign:`GET#")


def test_appcode(stack):
    r = call(stack, "GET", "/orders/1", {"authorization": "APPCODE 3F2504E04F8911D39A0C0305E82C3301"})
    assert r.status == 200, r
    assert call(stack, "GET", "/orders/1", {"authorization": "APPCODE nope"}).code == "A400AC"


def test_nonce_replay_refused(stack):
    h = sign("POST", "/orders", KEY, SECRET, headers={"content-type": "application/json"})
    assert call(stack, "POST", "/orders", h, b"{}").status == 200
    r = call(stack, "POST", "/orders", h, b"{}")
    assert (r.status, r.code) == (403, "S403NU")


def test_cli_sends_through_the_stack(stack):
    r = subprocess.run([os.path.join(ROOT, "target", "release", "cagate"), "sign", "--send", "--key", KEY, "--secret", SECRET,
                        f"http://127.0.0.1:{stack}/orders/9"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("HTTP/1.1 200"), r.stdout


def _admin_get(path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{STACK['admin']}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def test_admin_is_read_only_and_on_loopback(stack):
    r = subprocess.run(STACK["cmd"] + ["port", "envoy", "9902"], env=STACK["env"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"127.0.0.1:{STACK['admin']}", r.stdout + r.stderr
    r = subprocess.run(STACK["cmd"] + ["port", "envoy", "9901"], env=STACK["env"], capture_output=True, text=True)
    assert r.returncode != 0 or r.stdout.strip() in ("", ":0"), f"the admin itself is published: {r.stdout}"
    assert _admin_get("/ready")[0] == 200
    status, body = _admin_get("/stats/prometheus")
    assert status == 200 and "cagate" in body
    for path in ["/config_dump", "/drain_listeners", "/quitquitquit", "/stats", "/stats/../config_dump"]:
        assert _admin_get(path)[0] == 404, path
    assert _admin_get("/ready", method="POST")[0] == 404

"""`cagate apps add|grant|revoke|rotate|add-appcode|remove-appcode|remove|list` on the files users keep their configuration in: a
JSON document, Envoy's YAML (the sample, comments and all), Istio's WasmPlugin and EnvoyFilter, an app
registry document. Each edit is checked like `cagate check`; a dry run or a bad command leaves the file
as it was; and an app made with the CLI is let in by a real Envoy loaded with the edited file."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import GATE_CONFIG, call
from harness.envoy import ENVOY, ROOT, WASM, free_port, stop_process
from harness.signer import sign

CLI = os.environ.get("CAGATE_CLI", os.path.join(ROOT, "target", "release", "cagate"))
SAMPLES = {name: os.path.join(ROOT, "envoy", *name.split("/")) for name in
           ["envoy.yaml", "istio/wasmplugin.yaml", "istio/envoyfilter.yaml"]}


def cagate(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)


def ok(*args):
    r = cagate(*args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def listing(path, *extra):
    return {a["appId"]: a for a in json.loads(ok("apps", "list", path, "--json", *extra).stdout)}


def grants(path, app, *extra):
    return sorted((g["api"], g["stage"]) for g in listing(path, *extra)[app]["grants"])


@pytest.fixture
def config_file(tmp_path):
    p = tmp_path / "cagate.json"
    p.write_text(json.dumps(GATE_CONFIG, indent=2, ensure_ascii=False) + "\n")
    return p


def copy_sample(tmp_path, name):
    p = tmp_path / os.path.basename(name)
    shutil.copy(SAMPLES[name], p)
    return p


def test_lifecycle_on_a_json_configuration(config_file):
    before = config_file.read_text()
    r = ok("apps", "add", config_file, "--name", "billing", "--app-id", "20001")
    app = json.loads(r.stdout)
    assert app["appId"] == 20001 and len(app["appSecret"]) == 32 and len(app["appKey"]) == 24
    # The diff shows the new app, never its secret or AppCode (nor the file's other secrets).
    assert '"appKey": "%s"' % app["appKey"] in r.stderr and "********" in r.stderr
    for secret in [app["appSecret"], app["appCodes"][0], GATE_CONFIG["apps"][0]["appSecret"]]:
        assert secret not in r.stderr
    text = config_file.read_text()
    assert app["appSecret"] in text
    # The rest of the document is as it was: the change is the inserted app.
    assert text.replace(text[text.index(',\n    {\n      "appId": 20001'):text.index('\n  ],\n  "apis"')], "") == before

    ok("apps", "grant", config_file, "20001", "--api", "orders", "--stage", "RELEASE", "--stage", "TEST")
    ok("apps", "grant", config_file, "20001", "--api", "form", "--until", "30d")
    past = ok("apps", "grant", config_file, "20001", "--api", "form", "--until", "2020-01-01T00:00:00Z", "--dry-run")
    assert "warning: --until 2020-01-01T00:00:00Z has passed" in past.stderr, past.stderr
    assert grants(config_file, "20001") == [("form", "RELEASE"), ("orders", "RELEASE"), ("orders", "TEST")]
    until = [g for g in listing(config_file)["20001"]["grants"] if g["api"] == "form"][0]["authValidTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", until)
    # A grant already there changes nothing.
    r = ok("apps", "grant", config_file, "20001", "--api", "orders")
    assert "nothing to change" in r.stderr

    ok("apps", "revoke", config_file, "20001", "--api", "orders", "--stage", "TEST")
    assert grants(config_file, "20001") == [("form", "RELEASE"), ("orders", "RELEASE")]
    ok("apps", "grant", config_file, "20001", "--all")
    assert ("strict", "RELEASE") in grants(config_file, "20001")
    assert not [g for g in grants(config_file, "20001") if g[0] == "public"]  # ANONYMOUS: no grant

    r = ok("apps", "rotate", config_file, "20001", "--old-valid-for", "2h")
    rotated = json.loads(r.stdout)
    assert rotated["previousAppKey"] == app["appKey"] and rotated["appKey"] != app["appKey"]
    assert rotated["appSecret"] not in r.stderr and app["appSecret"] not in r.stderr
    listed = listing(config_file)["20001"]
    assert listed["appKey"] == rotated["appKey"]
    assert listed["keys"] == [{"appKey": app["appKey"], "validUntil": rotated["previousValidUntil"]}]
    assert "appSecret" not in json.dumps(listing(config_file))  # list never shows a secret

    r = ok("apps", "remove", config_file, "20001")
    assert "20001" not in config_file.read_text()
    assert json.loads(config_file.read_text()) == json.loads(before)
    ok("check", config_file)


def test_text_listing(config_file):
    out = ok("apps", "list", config_file).stdout
    assert "10001  demo  appKey test-app-key-1  1 AppCode(s)" in out
    assert "orders RELEASE until 2099-01-01T00:00:00Z, orders TEST" in out
    assert GATE_CONFIG["apps"][0]["appSecret"] not in out and GATE_CONFIG["apps"][0]["appCodes"][0] not in out


@pytest.mark.parametrize("cmd", [
    ["add", "--name", "x"],
    ["grant", "10002", "--api", "orders"],
    ["revoke", "10001", "--all"],
    ["rotate", "10001"],
    ["remove", "10001"],
])
def test_dry_run_writes_nothing(config_file, cmd):
    before = config_file.read_bytes()
    r = ok("apps", cmd[0], config_file, *cmd[1:], "--dry-run")
    assert r.stderr.startswith("--- ") or "\n--- " in r.stderr, r.stderr
    assert "dry run, nothing written" in r.stderr
    assert r.stdout == ""  # no credentials printed for what was not saved
    assert config_file.read_bytes() == before


@pytest.mark.parametrize("cmd, message", [
    (["grant", "424242", "--api", "orders"], "no app 424242"),
    (["grant", "10002", "--api", "nope"], "no API named nope"),
    (["grant", "10002", "--api", "form", "--stage", "TEST"], "not published in stage TEST"),
    (["grant", "10002", "--api", "orders", "--until", "soon"], "neither a span"),
    (["revoke", "424242", "--all"], "no app 424242"),
    (["rotate", "10001", "--old-valid-for", "yesterday"], "neither a span"),
    (["rotate", "424242"], "no app 424242"),
    (["remove", "424242"], "no app 424242"),
    (["add-appcode", "424242"], "no app 424242"),
    (["remove-appcode", "10001", "NOT-A-CODE-OF-IT"], "no such AppCode"),
    (["add", "--app-id", "10001"], "app 10001 already exists"),
    (["add", "--app-id", "bad id"], "--app-id"),
    (["grant", "10002"], "--api"),
])
def test_bad_commands_change_nothing(config_file, cmd, message):
    before = config_file.read_bytes()
    r = cagate("apps", cmd[0], config_file, *cmd[1:])
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert r.stdout == ""
    assert config_file.read_bytes() == before


def test_an_edit_the_filter_would_refuse_is_not_written(tmp_path):
    cfg = json.loads(json.dumps(GATE_CONFIG))
    # An ipControl plugin naming app 10002: removing that app would leave the configuration invalid.
    cfg["plugins"] = [{"name": "office", "type": "ipControl",
                       "data": {"type": "ALLOW", "items": [{"appId": "10002", "blocks": ["10.0.0.0/8"]}]}}]
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    assert cagate("check", p).returncode == 0, cagate("check", p).stdout
    before = p.read_bytes()
    r = cagate("apps", "remove", p, "10002")
    assert r.returncode != 0 and "would be invalid" in r.stderr, r.stderr
    assert p.read_bytes() == before


def test_files_that_are_not_configurations(tmp_path):
    for name, text, message in [
        ("x.json", '{"hello": 1}', "no cagate configuration found"),
        ("x.yaml", "a: [1\n", "does not parse"),
        ("q.yaml", 'c:\n  "@type": type.googleapis.com/google.protobuf.StringValue\n  value: \'{"apps": []}\'\n',
         "block scalar"),
    ]:
        p = tmp_path / name
        p.write_text(text)
        r = cagate("apps", "add", p)
        assert r.returncode != 0 and message in r.stderr, (name, r.stderr)
        assert p.read_text() == text
    r = cagate("apps", "list", tmp_path / "missing.json")
    assert r.returncode != 0 and "missing.json" in r.stderr


def block_lines(lines, key_pattern):
    """Indices of the lines of the block under the first line matching `key_pattern` (deeper indented,
    blank lines inside included)."""
    k = next(i for i, l in enumerate(lines) if re.search(key_pattern, l))
    first = k + 1
    indent = len(lines[first]) - len(lines[first].lstrip())
    end = first
    for i in range(first, len(lines)):
        if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) < indent:
            break
        if lines[i].strip():
            end = i + 1
    return first, end


def outside(text, key_pattern):
    lines = text.split("\n")
    first, end = block_lines(lines, key_pattern)
    return lines[:first], lines[end:]


@pytest.mark.parametrize("sample, key", [("envoy.yaml", r"^\s*value: \|"),
                                         ("istio/envoyfilter.yaml", r"^\s*value: \|"),
                                         ("istio/wasmplugin.yaml", r"^\s*pluginConfig:")])
def test_yaml_files_keep_everything_outside_the_configuration(tmp_path, sample, key):
    p = copy_sample(tmp_path, sample)
    before = p.read_text()
    app = json.loads(ok("apps", "add", p, "--name", "yaml-app", "--app-id", "20002").stdout)
    ok("apps", "grant", p, "20002", "--api", "orders", "--stage", "TEST")
    r = ok("apps", "rotate", p, "10001", "--keep-key", "--old-valid-for", "1h")
    assert json.loads(r.stdout)["appKey"] == "test-app-key-1"
    after = p.read_text()
    assert outside(after, key) == outside(before, key)
    assert after.count("\n#") == before.count("\n#")
    assert app["appSecret"] in after and app["appSecret"] not in r.stderr
    assert ok("check", p).stdout.count("valid (2 apps") == 1
    assert grants(p, "20002") == [("orders", "TEST")]
    assert listing(p)["10001"]["keys"][0]["appKey"] == "test-app-key-1"
    ok("apps", "remove", p, "20002")
    assert "20002" not in p.read_text()


def test_an_untouched_wasmplugin_reads_back_unchanged(tmp_path):
    """The YAML written for pluginConfig follows the sample's style: granting and revoking the same
    grant gives the file back byte for byte."""
    p = copy_sample(tmp_path, "istio/wasmplugin.yaml")
    before = p.read_text()
    ok("apps", "revoke", p, "10001", "--api", "orders", "--stage", "TEST")
    assert p.read_text() != before
    ok("apps", "grant", p, "10001", "--api", "orders", "--stage", "TEST")
    assert p.read_text() == before


def test_several_configurations_need_doc(tmp_path):
    p = copy_sample(tmp_path, "envoy.yaml")
    text = p.read_text()
    p.write_text(text + "---\n" + text)
    r = cagate("apps", "add", p)
    assert r.returncode != 0 and "--doc 1" in r.stderr and "--doc 2" in r.stderr
    ok("apps", "add", p, "--doc", "2", "--app-id", "20003")
    docs = p.read_text().split("\n---\n")
    assert "20003" not in docs[0] and "20003" in docs[1]


def test_registry_document(tmp_path, config_file):
    reg = tmp_path / "registry.json"
    reg.write_text('{\n  "version": "1",\n  "apps": [],\n  "authorizations": []\n}\n')
    app = json.loads(ok("apps", "add", reg, "--name", "partner", "--app-id", "30001").stdout)
    r = ok("apps", "grant", reg, "30001", "--api", "orders", "--stage", "TEST", "--config", config_file)
    assert "valid registry document" in r.stderr
    doc = json.loads(reg.read_text())
    assert doc["authorizations"] == [{"appId": 30001, "api": "orders", "stage": "TEST"}]
    assert doc["apps"][0]["appSecret"] == app["appSecret"]
    # The static configuration decides which names exist.
    r = cagate("apps", "grant", reg, "30001", "--api", "nope", "--config", config_file)
    assert r.returncode != 0 and "no API named nope" in r.stderr
    r = cagate("apps", "grant", reg, "30001", "--all")
    assert r.returncode != 0 and "--config" in r.stderr
    ok("apps", "grant", reg, "30001", "--all", "--config", config_file)
    assert ("strict", "RELEASE") in grants(reg, "30001")
    # A static app can be granted from the registry.
    ok("apps", "grant", reg, "10002", "--api", "orders", "--config", config_file)
    assert listing(reg)["10002"]["defined"] == "elsewhere"
    r = ok("apps", "rotate", reg, "30001")
    assert json.loads(r.stdout)["previousAppKey"] == app["appKey"]
    ok("apps", "remove", reg, "30001")
    doc = json.loads(reg.read_text())
    assert doc["apps"] == [] and doc["authorizations"] == [{"appId": "10002", "api": "orders", "stage": "RELEASE"}]


# --- A real Envoy, loaded with the sample YAML as the CLI edited it. ---

class YamlEnvoy:
    """Envoy started from a copy of envoy/envoy.yaml with free ports, the built module and `backend_port`."""

    def __init__(self, path, backend_port):
        self.port, self.admin_port = free_port(), free_port()
        self.dir = tempfile.mkdtemp(prefix="cagate-cli-envoy-")
        self.path = path
        self.backend_port = backend_port
        self.proc = self.log = None

    def start(self):
        text = self.path.read_text()
        text = (text.replace("port_value: 10000", f"port_value: {self.port}")
                .replace("port_value: 9901", f"port_value: {self.admin_port}")
                .replace("port_value: 8081", f"port_value: {self.backend_port}")
                .replace("filename: target/wasm32-wasip1/release/cagate.wasm", f"filename: {WASM}"))
        run = os.path.join(self.dir, "envoy.yaml")
        with open(run, "w") as f:
            f.write(text)
        self.log = open(os.path.join(self.dir, "envoy.log"), "wb")
        self.proc = subprocess.Popen([ENVOY, "-c", run, "--concurrency", "1", "--disable-hot-restart", "-l", "warning"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, open(os.path.join(self.dir, "envoy.log")).read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("envoy not ready")

    def stop(self):
        stop_process(self.proc, self.log, self.dir)

    def restart(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.log.close()
        return self.start()


def get(e, key, secret, path="/orders/7", stage=None):
    headers = {"X-Ca-Stage": stage} if stage else {}
    return call(e.port, "GET", path, sign("GET", path, key, secret, headers))


def test_envoy_admits_an_app_made_with_the_cli(tmp_path, backend):
    p = copy_sample(tmp_path, "envoy.yaml")
    app = json.loads(ok("apps", "add", p, "--name", "e2e").stdout)
    app_id = str(app["appId"])
    e = YamlEnvoy(p, backend.port)
    try:
        # Added, not granted: a valid signature, no authorization.
        e.start()
        # The sample starts without a warning (a deprecated field, no connection limit, …).
        warnings = [l for l in open(os.path.join(e.dir, "envoy.log")) if "][warning][" in l]
        assert warnings == [], warnings
        r = get(e, app["appKey"], app["appSecret"])
        assert (r.status, r.code) == (403, "A403UA"), r

        ok("apps", "grant", p, app_id, "--api", "orders", "--stage", "RELEASE")
        e.restart()
        r = get(e, app["appKey"], app["appSecret"])
        assert r.status == 200, r
        assert r.json()["headers"]["x-ca-app-id"] == [app_id]
        r = get(e, app["appKey"], app["appSecret"], stage="TEST")  # granted in RELEASE only
        assert (r.status, r.code) == (403, "A403UA"), r

        # Rotated: both pairs work until the old one's validUntil, then only the new one.
        rotated = json.loads(ok("apps", "rotate", p, app_id, "--old-valid-for", "6s").stdout)
        ends = time.mktime(time.strptime(rotated["previousValidUntil"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        e.restart()
        assert time.time() < ends - 0.5, "Envoy took too long to start to see both pairs"
        assert get(e, app["appKey"], app["appSecret"]).status == 200
        r = get(e, rotated["appKey"], rotated["appSecret"])
        assert r.status == 200 and r.json()["headers"]["x-ca-app-id"] == [app_id], r
        time.sleep(max(0.0, ends - time.time()) + 1.0)
        r = get(e, app["appKey"], app["appSecret"])
        assert (r.status, r.code) == (400, "A400IK"), r  # a lapsed pair is an unknown AppKey
        assert get(e, rotated["appKey"], rotated["appSecret"]).status == 200

        # A second AppCode works beside the first; the first, once removed, is refused.
        def appcode(code):
            return call(e.port, "GET", "/orders/7", {"Authorization": f"APPCODE {code}"})
        first = app["appCodes"][0]
        added = json.loads(ok("apps", "add-appcode", p, app_id).stdout)["appCode"]
        assert re.fullmatch(r"[0-9A-F]{32}", added) and added != first
        e.restart()
        assert appcode(first).status == 200 and appcode(added).status == 200
        r = ok("apps", "remove-appcode", p, app_id, first)
        assert first not in r.stdout + r.stderr, "the diff masks the AppCode"
        e.restart()
        r = appcode(first)
        assert (r.status, r.code) == (400, "A400AC"), r
        assert appcode(added).status == 200

        ok("apps", "revoke", p, app_id, "--all")
        e.restart()
        r = get(e, rotated["appKey"], rotated["appSecret"])
        assert (r.status, r.code) == (403, "A403UA"), r
        assert r.header("x-ca-error-message") == "Unauthorized"

        ok("apps", "remove", p, app_id)
        e.restart()
        r = get(e, rotated["appKey"], rotated["appSecret"])
        assert (r.status, r.code) == (400, "A400IK"), r
        # The sample's own app still works: nothing else was touched.
        assert get(e, "test-app-key-1", "test-app-secret-1-0123456789abcdef").status == 200
    finally:
        e.stop()


def test_import_then_the_next_steps_work(tmp_path):
    """`cagate import` ends with what to do next; the commands it names work on what it wrote."""
    cfg = tmp_path / "cagate.json"
    envoy = tmp_path / "envoy.yaml"
    r = ok("import", os.path.join(ROOT, "tests", "import", "aliyun-orders.yaml"), "-o", cfg, "--envoy", envoy,
           "--stage", "RELEASE", "--stage", "TEST")
    assert "Next steps" in r.stderr and "reportOnly" in r.stderr
    assert f"cagate apps add {envoy}" in r.stderr and f"cagate check {envoy}" in r.stderr
    grant = re.search(r"cagate apps grant \S+ <appId> (.*)", r.stderr).group(1).split()
    assert grant == ["--all", "--stage", "RELEASE", "--stage", "TEST"], r.stderr
    app = json.loads(ok("apps", "add", envoy, "--name", "first").stdout)
    ok("apps", "grant", envoy, app["appId"], *grant)
    assert len(listing(envoy)[str(app["appId"])]["grants"]) >= 2
    assert "valid" in ok("check", envoy).stdout
    # The module is the one built beside this cagate, at a path Envoy finds from any directory.
    assert re.search(r"filename: (/\S+/cagate\.wasm)", envoy.read_text()), envoy.read_text()

"""docs/clients.md runs as written: every Python and shell block is executed against a real Envoy
loaded with envoy/envoy.yaml (free ports substituted for 10000), and each `# → text` line of a block
must appear in what the block prints. The Java and Node.js blocks are not run (their SDKs come from
Maven and npm)."""
import os
import re
import subprocess
import sys

import pytest

from harness.envoy import ROOT
from test_cli_apps import CLI, YamlEnvoy

DOC = os.path.join(ROOT, "docs", "clients.md")


def blocks():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    found = []
    for m in re.finditer(r"^```(\w+)\n(.*?)^```$", text, re.S | re.M):
        lang, body = m.group(1), m.group(2)
        if lang in ("python", "sh"):
            line = text[:m.start()].count("\n") + 1
            found.append(pytest.param(lang, body, id=f"{lang}-line{line}"))
    return found


def test_the_guide_has_runnable_examples():
    langs = [p.values[0] for p in blocks()]
    assert langs.count("python") >= 4 and langs.count("sh") >= 4


@pytest.fixture(scope="module")
def sample_envoy(backend, tmp_path_factory):
    import shutil
    p = tmp_path_factory.mktemp("guide") / "envoy.yaml"
    shutil.copy(os.path.join(ROOT, "envoy", "envoy.yaml"), p)
    e = YamlEnvoy(p, backend.port).start()
    yield e
    e.stop()


@pytest.mark.parametrize("lang, body", blocks())
def test_example_runs(lang, body, sample_envoy, tmp_path):
    code = re.sub(r"\b10000\b", str(sample_envoy.port), body)
    expected = [m.strip() for m in re.findall(r"^# → (.*)$", body, re.M)]
    assert expected, "every example says what it prints"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(CLI, bindir / "cagate")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("CA_APP_KEY", None)
    env.pop("CA_APP_SECRET", None)
    cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    for e in expected:
        assert e in r.stdout, (e, r.stdout, r.stderr)

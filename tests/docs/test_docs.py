"""The documentation checks itself: every configuration example in README.md and docs/ passes
`cagate check`, every relative link and `#anchor` resolves (GitHub's heading slugs), no page cites a
path outside the repository, and docs/errors.md lists every code of the core's error table.

Configuration examples are fenced code blocks whose info string is `json config` (a complete cagate
document) or `yaml config` (an Envoy or Istio YAML that embeds one). Fragments use plain `json` or
`yaml` and are not checked. The CLI is `target/release/cagate` (override with CAGATE_CLI)."""
import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mdtext import (  # noqa: E402
    ROOT, code_blocks, error_codes, forbidden_citations, heading_slugs, links, markdown_files, slug,
)

CLI = os.environ.get("CAGATE_CLI", os.path.join(ROOT, "target", "release", "cagate"))

# Pages other work adds; a link to one passes while the page does not exist yet (once it exists, the
# link and its anchor are checked like any other).
PENDING_PAGES = set()

SUPPORTED_PLUGINS = ["jwtAuth", "trafficControl", "ipControl", "accessControl", "cors", "backendSignature", "basicAuth",
                     "errorMapping", "circuitBreaker", "routing", "logMask", "remoteAuth", "caching", "transformer"]
UNSUPPORTED_PLUGINS = []


def _rel(path):
    return os.path.relpath(path, ROOT)


FILES = markdown_files()
EXAMPLES = [(f, line, info, text) for f in FILES for (line, info, text) in code_blocks(f) if info in ("json config", "yaml config")]


def check_config(text, suffix, tmp_path):
    """Runs `cagate check` on one example: (exit status, output)."""
    path = tmp_path / f"example{suffix}"
    path.write_text(text)
    out = subprocess.run([CLI, "check", str(path)], capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module", autouse=True)
def cli_built():
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"{CLI} is missing: build it (cargo build --release -p cagate-cli) or set CAGATE_CLI")


def test_the_pages_exist():
    expected = ["README.md", "docs/README.md", "docs/getting-started.md", "docs/migrating-from-aliyun.md",
                "docs/configuration.md", "docs/errors.md", "docs/operations.md", "docs/security.md",
                "docs/performance.md", "docs/architecture.md", "docs/zh/getting-started.md",
                "docs/zh/migrating-from-aliyun.md"]
    expected += [f"docs/plugins/{t}.md" for t in SUPPORTED_PLUGINS + UNSUPPORTED_PLUGINS]
    missing = [p for p in expected if not os.path.isfile(os.path.join(ROOT, p))]
    assert not missing, missing


def test_readme_is_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) < 150


@pytest.mark.parametrize("path,line,info,text", EXAMPLES, ids=[f"{_rel(f)}:{n}" for f, n, _, _ in EXAMPLES])
def test_configuration_example_passes_cagate_check(path, line, info, text, tmp_path):
    code, output = check_config(text, ".json" if info == "json config" else ".yaml", tmp_path)
    assert code == 0 and ": valid (" in output, f"{_rel(path)}:{line}: cagate check refused the example:\n{output}"


@pytest.mark.parametrize("plugin", SUPPORTED_PLUGINS)
def test_each_plugin_page_has_a_complete_example_of_its_type(plugin):
    import json
    page = os.path.join(ROOT, "docs", "plugins", f"{plugin}.md")
    types = set()
    for _, info, text in code_blocks(page):
        if info == "json config":
            types |= {p.get("type") for p in json.loads(text).get("plugins", [])}
    assert plugin in types, f"docs/plugins/{plugin}.md has no `json config` example with a {plugin} plugin"


@pytest.mark.parametrize("plugin", UNSUPPORTED_PLUGINS)
def test_unsupported_plugin_pages_quote_what_cagate_check_says(plugin, tmp_path):
    doc = ('{"plugins": [{"name": "p", "type": "%s", "data": {}}], '
           '"apis": [{"name": "a", "method": "GET", "path": "/a", "authType": "ANONYMOUS"}]}' % plugin)
    code, output = check_config(doc, ".json", tmp_path)
    assert code == 1, output
    message = re.search(r"plugins\[0\]\.type: (.*)", output).group(1).strip()
    with open(os.path.join(ROOT, "docs", "plugins", f"{plugin}.md"), encoding="utf-8") as f:
        assert message in f.read(), f"docs/plugins/{plugin}.md does not quote today's message: {message}"


def resolve_link(source, target):
    """Why a link of `source` (a markdown file) to `target` does not resolve, or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
        return None  # a URL: not checked here (no network)
    path_part, _, anchor = target.partition("#")
    if path_part:
        dest = os.path.normpath(os.path.join(os.path.dirname(source), path_part))
        if os.path.relpath(dest, ROOT).startswith(".."):
            return f"{target}: leaves the repository"
        rel = _rel(dest)
        if not os.path.exists(dest):
            return None if rel in PENDING_PAGES and not anchor else f"{target}: {rel} does not exist"
    else:
        dest = source
    if anchor:
        if not dest.endswith(".md") or os.path.isdir(dest):
            return f"{target}: an anchor into a file that is not markdown"
        if not os.path.exists(dest) and _rel(dest) in PENDING_PAGES:
            return None
        if anchor not in heading_slugs(dest):
            return f"{target}: no heading #{anchor} in {_rel(dest)}"
    return None


@pytest.mark.parametrize("path", FILES, ids=[_rel(f) for f in FILES])
def test_relative_links_and_anchors_resolve(path):
    broken = [f"line {n}: {why}" for n, target in links(path) if (why := resolve_link(path, target))]
    assert not broken, f"{_rel(path)}:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", FILES, ids=[_rel(f) for f in FILES])
def test_no_path_outside_the_repository_is_cited(path):
    found = forbidden_citations(path)
    assert not found, f"{_rel(path)} cites paths outside the repository:\n" + "\n".join(f"line {n}: {t}" for n, t in found)


def test_errors_page_lists_every_code_of_the_table():
    codes = error_codes()
    assert len(codes) >= 80, "the error table was not read"
    with open(os.path.join(ROOT, "docs", "errors.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("|")]
    missing = [c for c, _ in codes if not any(f"`{c}`" in r for r in rows)]
    assert not missing, f"docs/errors.md has no table row for {missing}"
    wrong = [(c, s) for c, s in codes if not any(f"`{c}`" in r and f"| {s} |" in r for r in rows)]
    assert not wrong, f"docs/errors.md gives another status for {wrong}"


# The checkers themselves: each must fail on what it is there to catch.

def test_slugs_follow_githubs_rules():
    assert slug("What the backend sees") == "what-the-backend-sees"
    assert slug("`cagate check`: the configuration") == "cagate-check-the-configuration"
    assert slug("Apps at scale: the app registry") == "apps-at-scale-the-app-registry"
    assert slug("maxBodyBytes, maxUrlBytes") == "maxbodybytes-maxurlbytes"
    assert slug("Report-only mode (shadow)") == "report-only-mode-shadow"
    assert slug("apis[].backend") == "apisbackend"
    assert slug("快速开始") == "快速开始"


def test_link_checker_catches_broken_links_and_anchors(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Second part\n\n[ok](#second-part) [bad](#third) [gone](missing.md) "
                    "[up](../../../../../../etc/passwd)\n```\n[in code](nowhere.md)\n```\n")
    import mdtext as md
    monkeypatch.setattr(md, "ROOT", str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    found = [(t, resolve_link(str(page), t)) for _, t in links(str(page))]
    assert [t for t, why in found if why] == ["#third", "missing.md", "../../../../../../etc/passwd"], found


def test_citation_check_catches_outside_paths(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("see ../" + "shared/spec/config.md\nor /" + "work/main/x\nand spec/signature.md\nbut WasmPlugin.spec.pluginConfig is fine\n")
    assert [n for n, _ in forbidden_citations(str(page))] == [1, 2, 3]


def test_config_check_refuses_a_bad_example(tmp_path):
    code, output = check_config('{"apis": [{"name": "a", "method": "FETCH", "path": "/a"}]}', ".json", tmp_path)
    assert code == 1 and "unknown method FETCH" in output, output

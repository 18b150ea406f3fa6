"""Starts Debian's Prometheus (tests/tools/install-engines.sh installs it) on a free loopback port,
scraping Envoy admins' /stats/prometheus every second, with its storage in a temporary directory; a
query helper over the HTTP API; stops it.

    with Prometheus([envoy.admin_port], rule_files=[...]) as prom:
        prom.wait_scraped()
        prom.query('sum(rate(cagate_requests[1m]))')   # -> [{"metric": {...}, "value": [t, "1.5"]}, ...]
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from harness.envoy import free_port, stop_process

PROMETHEUS = os.environ.get("CAGATE_PROMETHEUS", shutil.which("prometheus") or "/usr/bin/prometheus")
PROMTOOL = os.environ.get("CAGATE_PROMTOOL", shutil.which("promtool") or "/usr/bin/promtool")


class PrometheusError(RuntimeError):
    pass


class Prometheus:
    """`targets`: Envoy admin ports (or "host:port" strings) scraped at /stats/prometheus as job
    `envoy`; `rule_files`: rule files loaded (and evaluated every `evaluation_interval`)."""

    def __init__(self, targets, rule_files=(), scrape_interval="1s", evaluation_interval="1s"):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="cagate-prometheus-")
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.targets = [t if isinstance(t, str) else f"127.0.0.1:{t}" for t in targets]
        rules = []
        for i, path in enumerate(rule_files):
            copy = os.path.join(self.dir, f"rules-{i}-{os.path.basename(path)}")
            shutil.copyfile(path, copy)
            rules.append(copy)
        config = {  # JSON is YAML
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": evaluation_interval},
            "rule_files": rules,
            "scrape_configs": [{
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": self.targets}],
            }],
        }
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)
        self.proc = None
        self.log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        if not os.path.exists(PROMETHEUS):
            raise PrometheusError(f"{PROMETHEUS} missing: run `make engines` (tests/tools/install-engines.sh)")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config_path}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise PrometheusError(f"prometheus not ready after {timeout}s:\n{self.log_text()[-4000:]}")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _get(self, path, **params):
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: a bad expression; the body says why
            body = json.load(e)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr, at=None):
        """An instant query: the result list of a vector (a scalar or string comes back as one
        pseudo-sample `{"metric": {}, "value": [t, v]}`)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self._get("/api/v1/query", **params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def label_values(self, label, match=None):
        return self._get(f"/api/v1/label/{label}/values", **({"match[]": match} if match else {}))

    def targets_health(self):
        return {t["scrapeUrl"]: (t["health"], t["lastError"]) for t in self._get("/api/v1/targets")["activeTargets"]}

    def alerts(self):
        """The alerts of the loaded rules: [{"labels": {...}, "state": "pending"|"firing", ...}]."""
        return self._get("/api/v1/alerts")["alerts"]

    def rules(self):
        return self._get("/api/v1/rules")["groups"]

    def wait_scraped(self, timeout=20):
        """Until every target was scraped successfully at least once."""
        deadline = time.time() + timeout
        while True:
            health = self.targets_health()
            if len(health) == len(self.targets) and all(h == "up" for h, _ in health.values()):
                return
            if time.time() > deadline:
                raise PrometheusError(f"targets not up after {timeout}s: {health}")
            time.sleep(0.2)

    def wait_for(self, expr, check=bool, timeout=20):
        """Polls `expr` until `check(result)` holds; returns the result (raises on timeout)."""
        deadline = time.time() + timeout
        while True:
            result = self.query(expr)
            if check(result):
                return result
            if time.time() > deadline:
                raise PrometheusError(f"{expr!r}: not as expected after {timeout}s: {result}")
            time.sleep(0.25)

    def stop(self):
        stop_process(self.proc, self.log, self.dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

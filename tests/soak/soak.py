"""`make soak`: mixed traffic against one Envoy (--concurrency 2) for `--minutes` (default 10): signed
requests (fresh nonces), AppCode, JWT, refusals of many kinds (bad signature, unknown key, replayed
nonce, stale timestamp, no AppCode match, JWT expired / unknown key / missing, no API), throttling
(trafficControl), and the app registry's document replaced every few seconds.

Every interval: Envoy's resident memory (VmRSS of the process), p50/p99 latency of the interval, the
answers, and the error lines of Envoy's log so far. At the end a report; the exit status is non-zero
when RSS grew more than `--rss-growth` (5 %) from the end of the warm-up to the end, when Envoy logged
an error, or when an answer was not the one its request should get.

    .venv/bin/python tests/soak/soak.py [--minutes 10] [--rate 300] [--interval 30]
"""
import argparse
import collections
import http.client
import os
import random
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from harness.backend import EchoBackend  # noqa: E402
from harness.envoy import ENVOY, NATIVE_DIR, Envoy, static_cluster  # noqa: E402
from harness.jwks import KeyPair  # noqa: E402
from harness.registry_server import RegistryServer  # noqa: E402
from harness.signer import sign  # noqa: E402

KEY, SECRET = "soak-key-1", "soak-secret-1-0123456789abcdef"
APPCODE = "0123456789ABCDEF0123456789ABCDEF"
JWT_KEY, OTHER_KEY = KeyPair("ES256", "soak-1"), KeyPair("ES256", "soak-unknown")
THROTTLE = 600    # per minute on /limited
DIRECT = [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]


def config():
    return {
        "signature": {"timestampToleranceSeconds": 120, "nonceTtlSeconds": 120},
        "appRegistry": {"uri": "http://registry.internal/apps.json", "cluster": "registry", "refreshSeconds": 1,
                        "timeoutMs": 1000},
        "apps": [{"appId": 1, "appKey": KEY, "appSecret": SECRET, "appCodes": [APPCODE]}],
        "plugins": [
            {"name": "jwt", "type": "jwtAuth", "data": {"parameter": "Authorization", "jwk": JWT_KEY.jwk}},
            {"name": "per-minute", "type": "trafficControl", "data": {"unit": "MINUTE", "apiDefault": THROTTLE}},
        ],
        "apis": [
            {"name": "orders", "method": "GET", "path": "/orders/[id]", "appCodeAuth": "HEADER",
             "authorizations": [{"appId": 1}]},
            {"name": "reports", "method": "GET", "path": "/reports", "authorizations": [{"appId": 1}]},
            {"name": "users", "method": "GET", "path": "/users/[id]", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "jwt"}]},
            {"name": "limited", "method": "GET", "path": "/limited", "authType": "ANONYMOUS",
             "plugins": [{"plugin": "per-minute"}]},
        ],
    }


def registry_doc(version, apps=200):
    """`apps` apps with grants on /reports; each version rotates the secret of one and swaps another."""
    out, grants = [], []
    for i in range(apps):
        secret = f"reg-secret-{i}-{version if i == version % apps else 0}"
        app_id = 20000 + i + (100000 if i == (version + 7) % apps and version % 2 else 0)
        out.append({"appId": app_id, "appKey": f"reg-key-{i}", "appSecret": secret})
        grants.append({"appId": app_id, "api": "reports", "stage": "RELEASE"})
    return {"apps": out, "authorizations": grants}


class Mix:
    """The request kinds: (weight, build() -> (path, headers, expected {(status, code)}))."""

    def __init__(self):
        self.replays = collections.deque(maxlen=64)

    def signed(self):
        return "/orders/1", sign("GET", "/orders/1", KEY, SECRET), {(200, None)}

    def answered(self, build, headers, status):
        """A signed request once admitted becomes one to replay (not before: a replay sent ahead of
        its original would be the one admitted)."""
        if build == self.signed and status == 200:
            self.replays.append(headers)

    def replayed(self):
        if not self.replays:
            return self.signed()
        return "/orders/1", random.choice(self.replays), {(403, "S403NU")}

    def appcode(self):
        return "/orders/2", {"authorization": f"APPCODE {APPCODE}"}, {(200, None)}

    def bad_signature(self):
        return "/orders/3", sign("GET", "/orders/3", KEY, "not-the-secret"), {(403, "A403IS")}

    def unknown_key(self):
        return "/orders/4", sign("GET", "/orders/4", "no-such-key", SECRET), {(400, "A400IK")}

    def stale(self):
        ts = int(time.time() * 1000) - 3_600_000
        return "/orders/5", sign("GET", "/orders/5", KEY, SECRET, timestamp=ts), {(403, "S403TE")}

    def bad_appcode(self):
        return "/orders/6", {"authorization": "APPCODE FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"}, {(400, "A400AC")}

    def jwt(self):
        return "/users/1", {"authorization": f"Bearer {JWT_KEY.token()}"}, {(200, None)}

    def jwt_expired(self):
        return "/users/2", {"authorization": f"Bearer {JWT_KEY.token(lifetime=-3600)}"}, {(403, "A403JE")}

    def jwt_unknown(self):
        return "/users/3", {"authorization": f"Bearer {OTHER_KEY.token()}"}, {(403, "A403JK")}

    def jwt_missing(self):
        return "/users/4", {}, {(400, "I400JR")}

    def no_api(self):
        return "/nowhere", {}, {(404, "I404NF")}

    def limited(self):
        return "/limited", {}, {(200, None), (429, "T429PA")}

    def registry_app(self):
        # App 0 is never rotated or swapped; others may be mid-change (refused by design).
        i = random.randrange(8)
        h = sign("GET", "/reports", f"reg-key-{i}", f"reg-secret-{i}-0", nonce=False)
        ok = {(200, None)} if i == 0 else {(200, None), (403, "A403IS"), (400, "A400IK"), (403, "A403PR"),
                                           (403, "A403EP")}
        return "/reports", h, ok

    def table(self):
        return [(20, self.signed), (4, self.replayed), (10, self.appcode), (3, self.bad_signature),
                (2, self.unknown_key), (2, self.stale), (2, self.bad_appcode), (12, self.jwt),
                (2, self.jwt_expired), (2, self.jwt_unknown), (2, self.jwt_missing), (2, self.no_api),
                (10, self.limited), (8, self.registry_app)]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = []
        self.answers = collections.Counter()
        self.unexpected = collections.Counter()

    def add(self, kind, ms, status, code, expected):
        with self.lock:
            self.lat.append(ms)
            self.answers[(kind, status, code)] += 1
            if (status, code) not in expected:
                self.unexpected[(kind, status, code)] += 1

    def take(self):
        with self.lock:
            lat, self.lat = self.lat, []
            return lat


def worker(port, mix, stats, rate, stopping, seed):
    random.seed(seed)
    table = mix.table()
    kinds, weights = [k for _, k in table], [w for w, _ in table]
    conn = None
    next_at = time.monotonic()
    while not stopping.is_set():
        build = random.choices(kinds, weights)[0]
        path, headers, expected = build()
        start = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("GET", path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            r.read()
            status, code = r.status, r.getheader("x-ca-error-code")
            if r.getheader("connection") == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status, code = 0, None
            if conn is not None:
                conn.close()
            conn = None
        stats.add(build.__name__, (time.monotonic() - start) * 1000, status, code, expected)
        mix.answered(build, headers, status)
        next_at += 1 / rate
        stopping.wait(max(0.0, next_at - time.monotonic()))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def log_lines(path, levels=("error", "critical")):
    out = []
    with open(path, "rb") as f:
        for line in f:
            text = line.decode("utf-8", "replace")
            if any(f"][{lv}][" in text for lv in levels):
                out.append(text.rstrip())
    return out


class QuietEnvoy(Envoy):
    """The harness's Envoy at log level `warning` (the soak counts the error lines)."""

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=NATIVE_DIR, **self.env)
        self.proc = subprocess.Popen([ENVOY, "-c", self.config_path, "--concurrency", str(self.concurrency),
                                      "--disable-hot-restart", "-l", "warning"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()
        return self


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=300, help="requests a second, all threads together")
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--interval", type=float, default=30, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the RSS baseline (default: max(150, a quarter of the run): past the nonce TTL)")
    ap.add_argument("--churn", type=float, default=3, help="seconds between registry documents")
    ap.add_argument("--rss-growth", type=float, default=5.0, help="percent allowed after the warm-up")
    args = ap.parse_args()
    total_s = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(max(150.0, total_s / 4), total_s / 2)

    reg = RegistryServer(registry_doc(0)).start()
    with EchoBackend() as backend:
        # Envoy answers for the backend: the soak measures the gateway, not a Python server.
        envoy = QuietEnvoy(config(), backend.port, concurrency=2, routes=DIRECT,
                           extra_clusters=[static_cluster("registry", reg.port)])
        with envoy:
            # The registry's first document reaches every worker before the clock starts.
            time.sleep(2.5)
            stats, mix, stopping = Stats(), Mix(), threading.Event()
            threads = [threading.Thread(target=worker, args=(envoy.port, mix, stats, args.rate / args.threads,
                                                             stopping, i), daemon=True)
                       for i in range(args.threads)]
            for t in threads:
                t.start()
            t0 = time.monotonic()
            version, next_churn, next_sample = 0, t0 + args.churn, t0 + args.interval
            rows, baseline = [], None
            print(f"soak: {args.minutes:g} min, {args.rate:g} req/s on {args.threads} threads, Envoy pid "
                  f"{envoy.proc.pid} (--concurrency 2), warm-up {warmup:.0f} s, registry churn every {args.churn:g} s",
                  flush=True)
            print(f"{'t (s)':>6} {'RSS MB':>8} {'req':>7} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
                  f"{'unexpected':>10}", flush=True)
            while True:
                now = time.monotonic()
                if now >= t0 + total_s:
                    break
                if envoy.proc.poll() is not None:
                    print("envoy exited", file=sys.stderr)
                    break
                if now >= next_churn:
                    version += 1
                    reg.publish(registry_doc(version))
                    next_churn += args.churn
                if now >= next_sample:
                    lat = stats.take()
                    rss = rss_kb(envoy.proc.pid)
                    if baseline is None and now - t0 >= warmup:
                        baseline = rss
                    errors = len(log_lines(envoy.log_path))
                    with stats.lock:
                        unexpected = sum(stats.unexpected.values())
                    row = (now - t0, rss, len(lat), len(lat) / args.interval, pct(lat, 0.5), pct(lat, 0.99), errors,
                           unexpected)
                    rows.append(row)
                    print(f"{row[0]:6.0f} {rss / 1024:8.1f} {row[2]:7d} {row[3]:6.0f} {row[4]:7.2f} {row[5]:7.2f} "
                          f"{errors:6d} {unexpected:10d}", flush=True)
                    next_sample += args.interval
                time.sleep(0.05)
            stopping.set()
            for t in threads:
                t.join()
            final_rss = rss_kb(envoy.proc.pid) if envoy.proc.poll() is None else 0
            errors = log_lines(envoy.log_path)
            warnings = log_lines(envoy.log_path, ("warning",))
            alive = envoy.proc.poll() is None
    reg.stop()

    answers = stats.answers
    total = sum(answers.values())
    print(f"\nrequests {total}, registry documents {version}")
    by_kind = collections.defaultdict(collections.Counter)
    for (kind, status, code), n in answers.items():
        by_kind[kind][f"{status} {code or ''}".strip()] += n
    for kind in sorted(by_kind):
        print(f"  {kind:<14} {dict(by_kind[kind])}")
    growth = (final_rss - baseline) / baseline * 100 if baseline else float("nan")
    print(f"RSS: {baseline / 1024 if baseline else float('nan'):.1f} MB after the warm-up, {final_rss / 1024:.1f} MB "
          f"at the end: {growth:+.2f} % (limit {args.rss_growth:g} %)")
    lats = [r for r in rows if r[2]]
    if lats:
        print(f"p50 per interval {min(r[4] for r in lats):.2f}..{max(r[4] for r in lats):.2f} ms, "
              f"p99 per interval {min(r[5] for r in lats):.2f}..{max(r[5] for r in lats):.2f} ms")
    print(f"Envoy log: {len(errors)} error lines, {len(warnings)} warnings")
    for line in errors[:10]:
        print("  " + line[:300])
    if stats.unexpected:
        print(f"unexpected answers: {dict(stats.unexpected)}")
    failed = []
    if not alive:
        failed.append("envoy exited")
    if baseline is None:
        failed.append("the run ended before the warm-up did")
    elif growth > args.rss_growth:
        failed.append(f"RSS grew {growth:.1f} %")
    if errors:
        failed.append(f"{len(errors)} error lines")
    if stats.unexpected:
        failed.append(f"{sum(stats.unexpected.values())} unexpected answers")
    print("soak: " + ("FAILED: " + "; ".join(failed) if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

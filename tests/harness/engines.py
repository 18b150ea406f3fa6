"""Real engines for cluster-mode tests, each on free loopback ports in a temp dir (Debian's redis-server,
etcd and etcdctl, installed by tests/tools/install-engines.sh), plus the test rate limit service.

    with Redis() as r, Etcd() as e, RateLimitService(r.port) as rls:
        ... r.port, e.port, rls.port ...
        e.stop(); e.start()            # same port, same data dir: the keys and leases survive
        etcd_lease_of(e.port, "cagate/once/abc")   # -> lease id (int), 0 = no lease, None = no key

Every class: start() (returns self, waits until ready), stop() (the process only: start() again reuses the
port and the data), kill() (SIGKILL: a crash), close() (stop and remove the temp dir), and `with`.
Set CAGATE_KEEP_LOGS=1 to keep the temp dirs (each has a log file).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RLS_SERVER = os.path.join(TESTS, "ratelimit", "server.py")
REDIS_SERVER = os.environ.get("CAGATE_REDIS_SERVER", "redis-server")
ETCD = os.environ.get("CAGATE_ETCD", "etcd")
ETCDCTL = os.environ.get("CAGATE_ETCDCTL", "etcdctl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tests_on_path():
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)


def _need(binary):
    if shutil.which(binary) is None:
        raise RuntimeError(f"{binary} not found: run tests/tools/install-engines.sh as root")


class _Process:
    """A child process with a log file in its own temp dir."""
    name = "engine"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix=f"cagate-{self.name}-")
        self.log_path = os.path.join(self.dir, f"{self.name}.log")
        self.proc = None
        self._log = None
        self._log_start = 0

    def _spawn(self, argv, env=None):
        if self.running():
            raise RuntimeError(f"{self.name} already running")
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.dir)

    def _wait(self, ready, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if ready():
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not {what} after {timeout}s:\n{self.log_text()[-3000:]}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, current_run=False):
        """The log (of every run, or with `current_run` of the latest start() only)."""
        try:
            with open(self.log_path, "rb") as f:
                if current_run:
                    f.seek(self._log_start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def close(self):
        self.stop()
        if not os.environ.get("CAGATE_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


# ---- Redis ----------------------------------------------------------------------------------------

def _redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Redis(_Process):
    """redis-server --port P --bind 127.0.0.1 --save '' --appendonly no (nothing persists across stop/start)."""
    name = "redis"

    def __init__(self, port=None):
        _need(REDIS_SERVER)
        super().__init__()
        self.port = port or free_port()

    def start(self, timeout=10):
        self._spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", self.dir, "--daemonize", "no", "--logfile", ""])
        self._wait(lambda: _redis_ping(self.port), timeout, "answering PING")
        return self

    def client(self, **kw):
        """A redis-py client (`pip install -r tests/ratelimit/requirements.txt`), decode_responses=True."""
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, **kw)

    def cli(self, *args):
        """redis-cli -p PORT ARGS...; stdout as text."""
        return subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)], check=True, capture_output=True,
                              text=True, timeout=10).stdout

    def pause(self, ms, mode="WRITE"):
        """CLIENT PAUSE: the slow-Redis path (DEBUG SLEEP is disabled in Redis 7)."""
        return self.cli("CLIENT", "PAUSE", ms, mode)

    def flushall(self):
        return self.cli("FLUSHALL")


# ---- etcd -----------------------------------------------------------------------------------------

def _http_json(url, timeout=1.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Etcd(_Process):
    """A one-member etcd v3 cluster (Debian etcd-server 3.4) with its data dir in the temp dir.
    stop() + start() restarts it on the same ports with the same data (keys and leases survive; etcd
    gives every lease its full TTL again after a restart unless lease checkpointing is on)."""
    name = "etcd"

    def __init__(self, port=None, peer_port=None, extra_args=()):
        _need(ETCD)
        super().__init__()
        self.port = port or free_port()
        self.peer_port = peer_port or free_port()
        self.data_dir = os.path.join(self.dir, "data")
        self.extra_args = list(extra_args)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        client, peer = self.endpoint, f"http://127.0.0.1:{self.peer_port}"
        self._spawn([ETCD, "--name", "default", "--data-dir", self.data_dir,
                     "--listen-client-urls", client, "--advertise-client-urls", client,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", f"default={peer}", "--initial-cluster-state", "new",
                     "--initial-cluster-token", f"cagate-test-{self.port}",
                     "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1",
                     # One member on loopback: a short election timeout makes a (re)start take ~0.2 s, not 1-10 s.
                     "--heartbeat-interval", "10", "--election-timeout", "100",
                     "--logger", "zap", "--log-outputs", "stderr", *self.extra_args])
        self._wait(self.healthy, timeout, "healthy")
        return self

    def healthy(self):
        """GET /health says {"health":"true"} (a leader, no alarm)."""
        try:
            return _http_json(f"{self.endpoint}/health").get("health") == "true"
        except (OSError, ValueError):
            return False

    def ctl(self, *args, input=None):
        return etcdctl(self.port, *args, input=input)


def etcdctl(port, *args, input=None):
    """ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:PORT ARGS...; stdout as text (raises on failure)."""
    env = dict(os.environ, ETCDCTL_API="3")
    r = subprocess.run([ETCDCTL, "--endpoints", f"127.0.0.1:{port}", "--dial-timeout", "2s",
                        "--command-timeout", "5s", *map(str, args)],
                       env=env, capture_output=True, text=True, input=input, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"etcdctl {' '.join(map(str, args))}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _b64(s):
    return base64.b64decode(s).decode("utf-8", "replace") if s else ""


def etcd_get(port, key):
    """The key as {"key", "value", "lease", "create_revision", "mod_revision", "version"} (strings and
    ints; lease 0 = none), or None when absent."""
    doc = json.loads(etcdctl(port, "get", key, "-w", "json"))
    kvs = doc.get("kvs") or []
    if not kvs:
        return None
    kv = kvs[0]
    return {"key": _b64(kv.get("key")), "value": _b64(kv.get("value")), "lease": int(kv.get("lease", 0)),
            "create_revision": int(kv.get("create_revision", 0)), "mod_revision": int(kv.get("mod_revision", 0)),
            "version": int(kv.get("version", 0))}


def etcd_lease_of(port, key):
    """The key's lease id (int; 0 = no lease), or None when the key is absent."""
    kv = etcd_get(port, key)
    return None if kv is None else kv["lease"]


def etcd_lease_ttl(port, lease_id):
    """(remaining ttl, granted ttl) of a lease, in seconds; remaining is -1 once the lease is gone."""
    doc = json.loads(etcdctl(port, "lease", "timetolive", format(lease_id, "x"), "-w", "json"))
    return int(doc.get("ttl", -1)), int(doc.get("granted-ttl", 0))


def etcd_keys(port, prefix=""):
    """The keys under `prefix` (all keys with ""), sorted."""
    doc = json.loads(etcdctl(port, "get", "--prefix", prefix, "--keys-only", "-w", "json"))
    return sorted(_b64(kv.get("key")) for kv in doc.get("kvs") or [])


def etcd_put(port, key, value, lease=0):
    args = ["put", key, value] + (["--lease", format(lease, "x")] if lease else [])
    etcdctl(port, *args)


def etcd_grant(port, ttl):
    """A new lease of `ttl` seconds; its id (int)."""
    doc = json.loads(etcdctl(port, "lease", "grant", ttl, "-w", "json"))
    return int(doc["ID"])


# ---- the test rate limit service ------------------------------------------------------------------

class RateLimitService(_Process):
    """tests/ratelimit/server.py against Redis on `redis_port`. As a subprocess by default (it can be
    killed like a real service); `in_process=True` runs it in this process (`.server` then exposes
    `calls`, `recent` and live `delay_ms`/`fail`/`empty_statuses`). `restart(**changes)` applies new
    switches: delay_ms (int), fail (None or a gRPC status name, "UNAVAILABLE"), empty_statuses (bool)."""
    name = "rls"

    def __init__(self, redis_port, port=None, delay_ms=0, fail=None, empty_statuses=False, in_process=False,
                 python=None):
        super().__init__()
        self.redis_port = redis_port
        self.port = port or free_port()
        self.delay_ms, self.fail, self.empty_statuses = delay_ms, fail, empty_statuses
        self.in_process = in_process
        self.python = python or sys.executable
        self.server = None

    def start(self, timeout=20):
        if self.in_process:
            _tests_on_path()
            from ratelimit.server import RateLimitServer
            self.server = RateLimitServer(self.redis_port, port=self.port, delay_ms=self.delay_ms, fail=self.fail,
                                          empty_statuses=self.empty_statuses).start()
            return self
        argv = [self.python, RLS_SERVER, "--port", str(self.port), "--redis-port", str(self.redis_port)]
        if self.delay_ms:
            argv += ["--delay-ms", str(self.delay_ms)]
        if self.fail:
            argv += ["--fail", self.fail]
        if self.empty_statuses:
            argv += ["--empty-statuses"]
        mark = f"listening on 127.0.0.1:{self.port}"
        self._spawn(argv)
        self._wait(lambda: mark in self.log_text(current_run=True), timeout, "listening")
        return self

    def running(self):
        if self.in_process:
            return self.server is not None
        return super().running()

    def stop(self, timeout=10):
        if self.in_process:
            if self.server is not None:
                self.server.stop()
                self.server = None
            return
        super().stop(timeout)

    def kill(self):
        if self.in_process:
            return self.stop()
        super().kill()

    def restart(self, **changes):
        for k, v in changes.items():
            if k not in ("delay_ms", "fail", "empty_statuses"):
                raise TypeError(f"unknown switch {k}")
            setattr(self, k, v)
        self.stop()
        return self.start()

    def client(self):
        """An RlsClient (tests/ratelimit/rls.py) on this service."""
        _tests_on_path()
        from ratelimit.rls import RlsClient
        return RlsClient(self.port)


# ---- Envoy clusters for the filter's dispatch_grpc_call ---------------------------------------------

def grpc_upstream(cluster_name):
    """The `upstream` argument for proxy-wasm dispatch_grpc_call as a serialized GrpcService
    {envoy_grpc {cluster_name}} (envoy/config/core/v3/grpc_service.proto: envoy_grpc = 1, cluster_name = 1).
    Envoy (source/extensions/common/wasm/context.cc Context::grpcCall) first parses the argument as a
    GrpcService and only if that fails takes it as a cluster name: a bare name that happens to parse
    (say "cagate-etcd": 'c' opens group 12, 'a' a fixed64 "gate-etc", 'd' closes group 12) yields a
    GrpcService with no target, and Envoy 1.40 aborts ("panic: unset oneof",
    async_client_manager_impl.cc:156). Measured here. This form is never ambiguous."""
    from . import protowire as pw
    return pw.message(1, pw.length_delimited(1, cluster_name))


def bare_cluster_name_is_safe(name):
    """False when Envoy could take `name`, passed bare to dispatch_grpc_call, for a serialized
    GrpcService (see grpc_upstream)."""
    from . import protowire as pw
    return not pw.may_parse(name.encode())


def grpc_cluster(name, port, health_check=False):
    """A STATIC Envoy cluster that speaks HTTP/2 (plaintext, prior knowledge) to 127.0.0.1:port, as
    gRPC needs: pass its name as the upstream of proxy-wasm dispatch_grpc_call. `health_check` adds an
    active gRPC health check (grpc.health.v1.Health/Check; etcd and tests/ratelimit/server.py answer it)."""
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        },
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }
    if health_check:
        cluster["health_checks"] = [{"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1,
                                     "healthy_threshold": 1, "grpc_health_check": {}}]
    return cluster

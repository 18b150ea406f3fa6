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

from harness.envoy import free_port

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RLS_SERVER = os.path.join(TESTS, "ratelimit", "server.py")
REDIS_SERVER = os.environ.get("CAGATE_REDIS_SERVER", "redis-server")
ETCD = os.environ.get("CAGATE_ETCD", "etcd")
ETCDCTL = os.environ.get("CAGATE_ETCDCTL", "etcdctl")




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
    switches: delay_ms (int), fail (None or a gRPC status name, "UNAVAILABLE"), empty_statuses (bool).
    `limits`: configured limits, as the server's --limit takes them ("domain:key=value:100:MINUTE")."""
    name = "rls"

    def __init__(self, redis_port, port=None, delay_ms=0, fail=None, empty_statuses=False, in_process=False,
                 python=None, limits=()):
        super().__init__()
        self.redis_port = redis_port
        self.port = port or free_port()
        self.delay_ms, self.fail, self.empty_statuses = delay_ms, fail, empty_statuses
        self.limits = list(limits)
        self.in_process = in_process
        self.python = python or sys.executable
        self.server = None

    def start(self, timeout=20):
        if self.in_process:
            _tests_on_path()
            from ratelimit.server import RateLimitServer, parse_limit
            self.server = RateLimitServer(self.redis_port, port=self.port, delay_ms=self.delay_ms, fail=self.fail,
                                          empty_statuses=self.empty_statuses,
                                          limits=dict(parse_limit(x) for x in self.limits)).start()
            return self
        argv = [self.python, RLS_SERVER, "--port", str(self.port), "--redis-port", str(self.redis_port)]
        if self.delay_ms:
            argv += ["--delay-ms", str(self.delay_ms)]
        if self.fail:
            argv += ["--fail", self.fail]
        if self.empty_statuses:
            argv += ["--empty-statuses"]
        for limit in self.limits:
            argv += ["--limit", limit]
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


# ---- etcd, three members ----------------------------------------------------------------------------

def etcd_status(port, timeout=0.5):
    """One member's view through the v3 JSON gateway: {"member": id, "leader": id or 0, "term": n}, or
    None when the member does not answer within `timeout` (stopped, paused, or busy)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/maintenance/status", data=b"{}",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):
        return None
    header = doc.get("header") or {}
    return {"member": int(header.get("member_id", 0)), "leader": int(doc.get("leader", 0)),
            "term": int(doc.get("raftTerm", 0))}


class EtcdMember(_Process):
    """One member of an EtcdCluster (started and stopped by it, or alone: kill(), pause(), resume())."""
    name = "etcd-member"

    def __init__(self, member_name, port, peer_port, initial_cluster, token, data_root, timing):
        super().__init__()
        self.member_name, self.port, self.peer_port = member_name, port, peer_port
        self.initial_cluster, self.token, self.timing = initial_cluster, token, timing
        self.data_dir = os.path.join(data_root, member_name)
        self.paused = False

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        """Spawns the member; returns at once (a member alone has no quorum: EtcdCluster waits)."""
        client, peer = self.endpoint, f"http://127.0.0.1:{self.peer_port}"
        heartbeat, election = self.timing
        # "new" on the first start only: a member that has its data rejoins with it.
        state = "existing" if os.path.isdir(os.path.join(self.data_dir, "member")) else "new"
        self._spawn([ETCD, "--name", self.member_name, "--data-dir", self.data_dir,
                     "--listen-client-urls", client, "--advertise-client-urls", client,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", self.initial_cluster, "--initial-cluster-state", state,
                     "--initial-cluster-token", self.token,
                     "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1",
                     "--heartbeat-interval", str(heartbeat), "--election-timeout", str(election),
                     "--logger", "zap", "--log-outputs", "stderr"])
        self.paused = False
        return self

    def status(self, timeout=0.5):
        return etcd_status(self.port, timeout) if self.running() and not self.paused else None

    def pause(self):
        """SIGSTOP: the process holds its sockets and answers nothing (a hung member)."""
        if self.running():
            self.proc.send_signal(19)
            self.paused = True

    def resume(self):
        if self.running():
            self.proc.send_signal(18)
            self.paused = False

    def stop(self, timeout=10):
        self.resume()
        super().stop(timeout)

    def kill(self):
        self.resume()
        super().kill()


class EtcdCluster:
    """Three etcd members (Debian etcd-server 3.4) on loopback, one cluster, data in /dev/shm when it
    exists (fsync there costs nothing, so a loaded machine does not lose its leader to slow disks).

        with EtcdCluster() as c:
            c.ports                      # client ports, one per member (an Envoy cluster of three endpoints)
            i = c.leader()               # index of the leader (None: no leader seen)
            c.members[i].kill(); c.members[i].start(); c.wait_healthy()
            c.members[j].pause(); c.members[j].resume()
            c.stop(); c.start()          # the whole cluster, same ports, same data

    `timing` = (heartbeat ms, election timeout ms): a leader lost is noticed after about the election
    timeout."""

    def __init__(self, size=3, timing=(50, 500)):
        _need(ETCD)
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.data_root = tempfile.mkdtemp(prefix="cagate-etcd-cluster-", dir=shm)
        names = [f"m{i}" for i in range(size)]
        ports = [(free_port(), free_port()) for _ in names]
        initial = ",".join(f"{n}=http://127.0.0.1:{peer}" for n, (_, peer) in zip(names, ports))
        token = f"cagate-test-{ports[0][0]}"
        self.members = [EtcdMember(n, c, p, initial, token, self.data_root, timing) for n, (c, p) in zip(names, ports)]
        self.timing = timing

    @property
    def ports(self):
        return [m.port for m in self.members]

    def start(self, timeout=30):
        for m in self.members:
            if not m.running():
                m.start()
        self.wait_healthy(timeout)
        return self

    def stop(self):
        for m in self.members:
            m.stop()

    def statuses(self):
        return [m.status() for m in self.members]

    def leader(self):
        """Index of the member every answering member names as leader, or None."""
        seen = {s["leader"] for s in self.statuses() if s}
        if len(seen) != 1 or 0 in seen:
            return None
        (leader_id,) = seen
        for i, s in enumerate(self.statuses()):
            if s and s["member"] == leader_id:
                return i
        return None

    def writable(self, timeout=0.25, key="cagate-probe/quorum"):
        """Whether a write commits (through any running, unpaused member, each given `timeout`): the
        one exact test of "a quorum is reachable" (a follower keeps naming a dead leader until its
        election timeout, so statuses alone say too much)."""
        value = base64.b64encode(str(time.time()).encode()).decode()
        body = json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": value}).encode()
        for m in self.members:
            if not m.running() or m.paused:
                continue
            req = urllib.request.Request(f"http://127.0.0.1:{m.port}/v3/kv/put", data=body,
                                         headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    if "header" in json.loads(r.read()):
                        return True
            except (OSError, ValueError):
                continue
        return False

    def wait_healthy(self, timeout=30):
        """Until every running, unpaused member answers /health true (a leader, no alarm)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise RuntimeError(f"{m.member_name} exited:\n{m.log_text()[-3000:]}")
            live = [m for m in self.members if m.running() and not m.paused]
            if live and all(_etcd_healthy(m.port) for m in live):
                return
            time.sleep(0.05)
        raise RuntimeError(f"etcd cluster not healthy after {timeout}s:\n"
                           + "\n".join(f"{m.member_name}: {m.log_text()[-1500:]}" for m in self.members))

    def ctl(self, *args, input=None):
        """etcdctl against the first member that answers."""
        last = None
        for m in self.members:
            if m.running() and not m.paused:
                try:
                    return etcdctl(m.port, *args, input=input)
                except RuntimeError as e:
                    last = e
        raise last or RuntimeError("no etcd member running")

    def close(self):
        for m in self.members:
            m.close()
        if not os.environ.get("CAGATE_KEEP_LOGS"):
            shutil.rmtree(self.data_root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def _etcd_healthy(port):
    try:
        return _http_json(f"http://127.0.0.1:{port}/health", timeout=0.5).get("health") == "true"
    except (OSError, ValueError):
        return False


def grpc_cluster_of(name, ports, health_check=True, interval_ms=500):
    """grpc_cluster with one endpoint per port (say the members of an EtcdCluster). `health_check`:
    Envoy's active gRPC health check every `interval_ms`, a member that fails one check is left out
    until it passes one (when every member fails, Envoy's panic mode uses them all)."""
    cluster = grpc_cluster(name, ports[0])
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}} for p in ports]
    if health_check:
        every = f"{interval_ms / 1000}s"
        # The same pace with or without traffic and after a failure (Envoy's defaults: 60 s without
        # traffic, which leaves a member that failed its first check out for a minute).
        cluster["health_checks"] = [{"timeout": f"{interval_ms / 2000}s", "interval": every,
                                     "no_traffic_interval": every, "unhealthy_interval": every,
                                     "unhealthy_threshold": 1, "healthy_threshold": 1,
                                     "grpc_health_check": {}}]
    return cluster


def envoy_cluster_health(admin_port, cluster):
    """{"host:port": health flags} of one Envoy cluster, from the admin /clusters."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters", timeout=5) as r:
        lines = r.read().decode().splitlines()
    out = {}
    for line in lines:
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == cluster and parts[2] == "health_flags":
            out[parts[1]] = parts[3]
    return out


def wait_envoy_cluster_healthy(admin_port, cluster, timeout=15):
    """Until every host of `cluster` passed its active health check."""
    deadline = time.time() + timeout
    while True:
        flags = envoy_cluster_health(admin_port, cluster)
        if flags and all(v == "healthy" for v in flags.values()):
            return
        if time.time() > deadline:
            raise RuntimeError(f"{cluster} not healthy after {timeout}s: {flags}")
        time.sleep(0.1)


class DurableRedis(Redis):
    """Redis whose data survives stop() + start(): an append-only file synced on every write (what a
    rate limit service's Redis with persistence keeps across a restart)."""
    name = "redis-durable"

    def start(self, timeout=10):
        self._spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                     "--daemonize", "no", "--logfile", ""])
        self._wait(lambda: _redis_ping(self.port), timeout, "answering PING")
        return self

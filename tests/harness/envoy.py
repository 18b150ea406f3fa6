"""Starts a real Envoy with the cagate filter on free loopback ports, and stops it."""
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVOY = os.environ.get("CAGATE_ENVOY", os.path.join(ROOT, ".venv", "bin", "envoy"))
WASM = os.environ.get("CAGATE_WASM", os.path.join(ROOT, "target", "wasm32-wasip1", "release", "cagate.wasm"))
EMPTY_WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "cagate_empty.wasm")
# Which build of the filter the tests run: the Wasm filter (default) or the native dynamic module.
BUILD = os.environ.get("CAGATE_BUILD", "wasm")
NATIVE = BUILD == "native"
# Where Envoy finds libcagate_native.so (passed to Envoy as ENVOY_DYNAMIC_MODULES_SEARCH_PATH).
NATIVE_DIR = os.environ.get("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", os.path.join(ROOT, "target", "native"))
# The native module's name (Envoy loads lib<name>.so).
NATIVE_MODULE = "cagate_native"
# Envoy's Prometheus output drops a module's metrics namespace (`dynamicmodulescustom.`) only with this
# runtime feature on: then both builds export the same Prometheus names and tags (cagate_refused{code=…}).
NATIVE_RUNTIME = {"layers": [{"name": "cagate-native", "static_layer": {
    "envoy.reloadable_features.dynamic_modules_strip_custom_stat_prefix": True}}]}
# A filter's process environment (native): kept beside the filter until the bootstrap is written.
_ENV_KEY = "_cagate_env"


def stop_process(proc, log, workdir):
    """Stops a test process (terminate, then kill after 10 s), closes its log and, unless
    CAGATE_KEEP_LOGS is set, removes its working directory."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if log:
        log.close()
    if not os.environ.get("CAGATE_KEEP_LOGS"):
        shutil.rmtree(workdir, ignore_errors=True)


_HANDED_OUT = set()


def free_port():
    """A free loopback port for a test server, below the kernel's ephemeral range. A port the kernel
    picks for bind(0) comes from that range, which it also draws from for every outgoing connection
    (a client's, Envoy's to a backend): one could take the port before the server meant to listen on
    it binds, and the server would fail with "address already in use"."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    for _ in range(200):
        port = random.randrange(10000, max(ephemeral_low, 10001))
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def native_filter(config_json, env=None):
    """The cagate filter as Envoy's dynamic module; `env`: variables the filter reads (set in Envoy's
    process environment, the native module's only environment)."""
    f = {
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": NATIVE_MODULE},
            "filter_name": "cagate",
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config_json if isinstance(config_json, str) else json.dumps(config_json),
            },
        },
    }
    if env:
        f[_ENV_KEY] = dict(env)
    return f


def split_env(http_filters):
    """The filters as Envoy takes them, and the process environment the native ones asked for."""
    env, clean = {}, []
    for f in http_filters:
        if isinstance(f, dict) and _ENV_KEY in f:
            env.update(f[_ENV_KEY])
            f = {k: v for k, v in f.items() if k != _ENV_KEY}
        clean.append(f)
    return clean, env


def wasm_filter(config_json, wasm=None, vm_id="cagate", vm_env=None):
    """`vm_env`: environment variables of the Wasm VM (`vm_config.environment_variables`). With
    CAGATE_BUILD=native, the cagate filter (`wasm` not given) is the native module; a `wasm` given
    (even WASM) is always that Wasm module."""
    if wasm is None:
        if NATIVE:
            return native_filter(config_json, env=vm_env)
        wasm = WASM
    vm_config = {
        "vm_id": vm_id,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": wasm}},
    }
    if vm_env:
        vm_config["environment_variables"] = {"key_values": dict(vm_env)}
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "cagate",
                "root_id": "cagate",
                # Lets the filter hold the headers while it reads a form body or checks Content-MD5.
                "allow_on_headers_stop_iteration": True,
                "vm_config": vm_config,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config_json if isinstance(config_json, str) else json.dumps(config_json),
                },
            },
        },
    }


# Turns cagate's stat names into tags, and the filter-time histogram's buckets (µs): one list for the
# samples, the CLI and the tests (envoy/observability/).
with open(os.path.join(ROOT, "envoy", "observability", "stats-tags.json")) as _f:
    STATS_TAGS = json.load(_f)
with open(os.path.join(ROOT, "envoy", "observability", "histogram-buckets.json")) as _f:
    HISTOGRAM_BUCKETS = json.load(_f)


def static_cluster(name, port):
    return {
        "name": name,
        "connect_timeout": "1s",
        "type": "STATIC",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }


# Envoy's compressor with the reference's gzip rule: the request accepts gzip, the body is over 2 KB,
# the content type is one of these.
GZIP_TYPES = ["text/xml", "text/plain", "text/css", "application/javascript", "application/x-javascript",
              "application/rss+xml", "application/xml", "application/json", "application/octet-stream"]
COMPRESSOR = {
    "name": "envoy.filters.http.compressor",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
        "response_direction_config": {"common_config": {
            "min_content_length": 2049, "content_type_matcher": [{"exact": t} for t in GZIP_TYPES]}},
        "compressor_library": {"name": "gzip", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"}},
    },
}


def http_connection_manager(http_filters, routes=None, hcm_options=None):
    """The gateway's connection manager; `hcm_options` are merged over the defaults (say
    `{"normalize_path": True}` or `{"common_http_protocol_options": {"max_headers_count": 5000}}`)."""
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        # The connected peer is the client address (ipControl's default source), and the
        # X-Forwarded-For header reaches the filter as the client sent it.
        "use_remote_address": True,
        "skip_xff_append": True,
        "route_config": {"virtual_hosts": [{
            "name": "all", "domains": ["*"],
            "routes": routes or [{"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "30s"}}],
        }]},
        "http_filters": list(http_filters) + [router],
    }
    hcm.update(hcm_options or {})
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}


def listener(port, http_filters, buffer_limit=16 * 1024 * 1024, routes=None, hcm_options=None):
    return {
        "name": "gateway",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "per_connection_buffer_limit_bytes": buffer_limit,
        "filter_chains": [{"filters": [http_connection_manager(http_filters, routes, hcm_options)]}],
    }


def bootstrap(port, admin_port, backend_port, http_filters, buffer_limit=16 * 1024 * 1024, extra_clusters=(),
              routes=None, hcm_options=None, lds_path=None):
    """With `lds_path`, the listener is not static: Envoy reads it from that file (a DiscoveryResponse)
    and reloads it whenever a new file is renamed over it."""
    gateway = listener(port, http_filters, buffer_limit, routes, hcm_options)
    boot = {
        "stats_config": {"stats_tags": STATS_TAGS, "histogram_bucket_settings": HISTOGRAM_BUCKETS},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [] if lds_path else [gateway],
            "clusters": [dict(static_cluster("backend", backend_port), per_connection_buffer_limit_bytes=buffer_limit)]
            + list(extra_clusters),
        },
    }
    if NATIVE:
        boot["layered_runtime"] = NATIVE_RUNTIME
    if lds_path:
        boot["node"] = {"id": "cagate-test", "cluster": "cagate-test"}  # required with dynamic resources
        boot["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3",
                                                    "path_config_source": {"path": lds_path}}}
    return boot


LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"


class Envoy:
    """`with Envoy(cfg, backend_port) as e:` starts Envoy with the filter and waits until it is ready."""

    def __init__(self, filter_config, backend_port, concurrency=2, http_filters=None, log_level="info",
                 extra_clusters=(), routes=None, compressor=False, hcm_options=None, lds=False):
        """`hcm_options`: extra HttpConnectionManager fields. `lds`: serve the listener from a watched
        file, so that `publish()` can reconfigure the filter while Envoy runs."""
        self.port = free_port()
        self.admin_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="cagate-envoy-")
        self.config_path = os.path.join(self.dir, "envoy.json")
        self.log_path = os.path.join(self.dir, "envoy.log")
        self.lds_path = os.path.join(self.dir, "lds", "listeners.json") if lds else None
        self.routes = routes
        self.hcm_options = hcm_options
        self.compressor = compressor
        self.lds_version = 0
        filters = http_filters if http_filters is not None else [wasm_filter(filter_config)]
        filters, self.env = split_env(filters)
        if compressor:
            filters = [COMPRESSOR] + filters
        if lds:
            os.makedirs(os.path.dirname(self.lds_path))
            self._write_listener(filters)
        with open(self.config_path, "w") as f:
            json.dump(bootstrap(self.port, self.admin_port, backend_port, filters, extra_clusters=extra_clusters,
                                routes=routes, hcm_options=hcm_options, lds_path=self.lds_path), f)
        self.concurrency = concurrency
        self.log_level = log_level
        self.proc = None

    def _write_listener(self, http_filters):
        self.lds_version += 1
        doc = {"version_info": str(self.lds_version),
               "resources": [dict(listener(self.port, http_filters, routes=self.routes, hcm_options=self.hcm_options),
                                  **{"@type": LISTENER_TYPE})]}
        tmp = self.lds_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, self.lds_path)  # Envoy reloads the file when a new one is moved over it

    def publish(self, filter_config=None, http_filters=None):
        """Only with `lds=True`: replaces the listener with one whose filter has `filter_config` (same
        vm_id). Returns at once: see `wait_listener_update`."""
        assert self.lds_path, "Envoy(..., lds=True) required"
        filters = http_filters if http_filters is not None else [wasm_filter(filter_config)]
        filters, _ = split_env(filters)  # the process environment is the one Envoy started with
        if self.compressor:
            filters = [COMPRESSOR] + filters
        self._lds_before = (self.counter("listener_manager.lds.update_success"),
                            self.counter("listener_manager.lds.update_rejected"))
        self._write_listener(filters)

    def counter(self, name):
        """One counter or gauge from the admin /stats (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats?filter=^{name}$", timeout=5) as r:
            for line in r.read().decode().splitlines():
                k, _, v = line.partition(": ")
                if k == name:
                    return int(v)
        return 0

    def wait_listener_update(self, timeout=15):
        """After `publish()`: waits until Envoy accepted the new listener file (one more
        `listener_manager.lds.update_success`) and no listener is still warming; raises if Envoy
        rejected it (`listener_manager.lds.update_rejected`, say the filter refused its configuration)."""
        success, rejected = self._lds_before
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.counter("listener_manager.lds.update_rejected") > rejected:
                raise RuntimeError(f"envoy rejected the listener update:\n{self.log_text()[-4000:]}")
            if (self.counter("listener_manager.lds.update_success") > success
                    and self.counter("listener_manager.total_listeners_warming") == 0):
                return
            time.sleep(0.05)
        raise RuntimeError(f"listener update not applied after {timeout}s:\n{self.log_text()[-4000:]}")

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=NATIVE_DIR, **self.env)
        self.proc = subprocess.Popen(
            [ENVOY, "-c", self.config_path, "--concurrency", str(self.concurrency), "--disable-hot-restart",
             "-l", self.log_level, "--component-log-level", "wasm:debug,dynamic_modules:debug"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{self.log_text()[-4000:]}")

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stats(self, fmt="prometheus"):
        path = "/stats/prometheus" if fmt == "prometheus" else "/stats"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        stop_process(self.proc, getattr(self, "log", None), self.dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

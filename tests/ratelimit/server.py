"""A test-only Envoy rate limit service (RLS v3 ShouldRateLimit) over Redis, for cagate's cluster mode.

It is NOT envoyproxy/ratelimit: it reproduces that server's Redis algorithm for requests whose
descriptors carry `limit` overrides, which is all cagate sends. References (envoyproxy/ratelimit@f2fb1577):
- key: prefix + domain + "_" + (key + "_" + value + "_") per entry + window start, where window start =
  now // unit_seconds * unit_seconds (src/limiter/cache_key.go GenerateCacheKey; prefix is empty here);
- a non-transactional pipeline of INCRBY key hits + EXPIRE key unit_seconds per limited descriptor,
  decided on the value INCRBY returned: over limit when it exceeds requests_per_unit
  (src/redis/fixed_cache_impl.go DoLimit, src/limiter/base_limiter.go GetResponseDescriptorStatus);
- hits: a descriptor's own hits_addend when set (0 = check only), else max(1, request hits_addend)
  (src/utils/utilities.go GetHitsAddends);
- duration_until_reset = unit_seconds - now % unit_seconds (src/utils/utilities.go CalculateReset);
- a status per descriptor; overall OVER_LIMIT when any is over (src/service/ratelimit.go);
- a descriptor with no override takes the limit its domain and entries have in the server's
  configuration (`--limit`, one level of envoyproxy/ratelimit's config file: a descriptor of exactly
  those entries; what Envoy's own ratelimit filter relies on);
- a descriptor with no limit (no override, no configured one): OK, no current_limit, remaining 0, no
  reset (GetResponseDescriptorStatus with an empty key). envoyproxy/ratelimit honours overrides only
  for a domain present in its config file (src/config/config_impl.go GetLimit): a real deployment needs
  a config with `domain: <cagate's domain>`;
- an empty domain or descriptor list, or a Redis error, is a gRPC error with status UNKNOWN, as a Go
  error returned by the real server becomes (src/service/ratelimit.go ShouldRateLimit's recover).
Not reproduced: the local over-limit cache, near-limit stats, shadow mode, custom headers, quota mode,
STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT, expiration jitter, per-second Redis.

Test switches: `delay_ms` answers late (the hits are counted first, as with a slow network);
`fail` answers every call with that gRPC status (default UNAVAILABLE) without touching Redis;
`empty_statuses` answers with no statuses (as Limitador does).

CLI: python tests/ratelimit/server.py --port P --redis-port R [--delay-ms D] [--fail [CODE]] [--empty-statuses]
     [--limit DOMAIN:KEY=VALUE[,KEY=VALUE...]:REQUESTS_PER_UNIT:UNIT ...]
It prints "listening on 127.0.0.1:P" once ready and stops on SIGTERM/SIGINT.
In-process: RateLimitServer(redis_port=R).start() ... .stop()
"""
import argparse
import collections
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ratelimit import rls  # noqa: E402

HEALTH_PATH = "/grpc.health.v1.Health/Check"   # HealthCheckResponse{status=1 SERVING} = 08 01


def cache_key(domain, entries, unit_seconds, now):
    parts = [domain, "_"]
    for k, v in entries:
        parts += [k, "_", v, "_"]
    parts.append(str(now // unit_seconds * unit_seconds))
    return "".join(parts)


class RateLimitServer:
    def __init__(self, redis_port, port=0, host="127.0.0.1", redis_host="127.0.0.1", delay_ms=0, fail=None,
                 empty_statuses=False, clock=time.time, workers=16, limits=None):
        self.redis_port, self.redis_host = redis_port, redis_host
        self.host, self.port = host, port
        self.delay_ms = delay_ms
        self.fail = fail                  # None, or a grpc.StatusCode name ("UNAVAILABLE", ...)
        self.empty_statuses = empty_statuses
        self.clock = clock                # for tests: a function returning unix seconds
        # configured limits: {(domain, ((key, value), ...)): (requests_per_unit, unit name)}
        self.limits = dict(limits or {})
        self.workers = workers
        self.calls = 0                    # ShouldRateLimit calls received
        self.recent = collections.deque(maxlen=256)   # (rls.Request, metadata dict) of recent calls
        self._lock = threading.Lock()
        self._server = None
        self._redis = None

    # -- lifecycle --
    def start(self):
        # One immediate retry (a pooled connection may be stale after a Redis restart), no backoff: a
        # Redis that is down gives a fast gRPC error, not a slow one.
        self._redis = redis.Redis(host=self.redis_host, port=self.redis_port, socket_timeout=2,
                                  socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers),
                                   options=[("grpc.so_reuseport", 0)])
        handlers = {
            rls.METHOD: grpc.unary_unary_rpc_method_handler(
                self._should_rate_limit, request_deserializer=rls.decode_request,
                response_serializer=rls.encode_response),
        }
        self._server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler(rls.SERVICE, handlers),
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
                "Check": grpc.unary_unary_rpc_method_handler(
                    lambda req, ctx: b"\x08\x01", request_deserializer=None, response_serializer=None)}),
        ))
        self.port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        if not self.port:
            raise RuntimeError(f"cannot bind {self.host}:{self.port}")
        self._server.start()
        return self

    def stop(self, grace=0):
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def wait(self):
        self._server.wait_for_termination()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the RPC --
    def _should_rate_limit(self, req, context):
        with self._lock:
            self.calls += 1
            self.recent.append((req, dict(context.invocation_metadata())))
        if self.fail:
            context.abort(getattr(grpc.StatusCode, self.fail), f"test rate limit service: --fail {self.fail}")
        try:
            resp = self.decide(req)
        except ValueError as e:
            context.abort(grpc.StatusCode.UNKNOWN, str(e))
        except redis.RedisError as e:
            context.abort(grpc.StatusCode.UNKNOWN, f"redis error: {e}")
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        return resp

    def decide(self, req):
        if not req.domain:
            raise ValueError("rate limit domain must not be empty")
        if not req.descriptors:
            raise ValueError("rate limit descriptor list must not be empty")
        now = int(self.clock())
        plan = []   # (index, key, hits, limit, unit_seconds)
        for i, d in enumerate(req.descriptors):
            limit = d.limit if d.limit is not None else self.limits.get((req.domain, tuple(d.entries)))
            if limit is None:
                continue
            rpu, unit = limit
            unit_seconds = rls.UNIT_SECONDS.get(unit)
            if unit_seconds is None:
                raise ValueError(f"descriptor {i}: unknown rate limit unit {unit}")
            hits = d.hits_addend if d.hits_addend is not None else max(1, req.hits_addend)
            plan.append((i, cache_key(req.domain, d.entries, unit_seconds, now), hits, limit, unit_seconds))
        counts = []
        if plan:
            pipe = self._redis.pipeline(transaction=False)
            for _, key, hits, _, unit_seconds in plan:
                pipe.incrby(key, hits)
                pipe.expire(key, unit_seconds)
            counts = pipe.execute()[0::2]
        statuses = [rls.DescriptorStatus(rls.OK) for _ in req.descriptors]
        for (i, _, hits, (rpu, unit), unit_seconds), after in zip(plan, counts):
            limit = rls.RateLimit(rpu, unit)
            reset = (unit_seconds - now % unit_seconds, 0)
            if after > rpu:
                statuses[i] = rls.DescriptorStatus(rls.OVER_LIMIT, limit, 0, reset)
            else:
                statuses[i] = rls.DescriptorStatus(rls.OK, limit, rpu - after, reset)
        overall = rls.OVER_LIMIT if any(s.code == rls.OVER_LIMIT for s in statuses) else rls.OK
        return rls.Response(overall, [] if self.empty_statuses else statuses)


def parse_limit(text):
    """DOMAIN:KEY=VALUE[,KEY=VALUE...]:REQUESTS_PER_UNIT:UNIT -> ((domain, entries), (rpu, unit))."""
    try:
        domain, entries, rpu, unit = text.rsplit(":", 3)
        pairs = tuple(tuple(e.split("=", 1)) for e in entries.split(","))
        units = {name: code for code, name in rls.UNIT_NAMES.items()}
        if not domain or any(len(p) != 2 for p in pairs) or unit.upper() not in units:
            raise ValueError(text)
        return (domain, pairs), (int(rpu), units[unit.upper()])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not DOMAIN:KEY=VALUE:REQUESTS_PER_UNIT:UNIT: {text}") from None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="gRPC port on --host (0: any free port)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--redis-host", default="127.0.0.1")
    ap.add_argument("--delay-ms", type=int, default=0, help="answer this late (hits are counted first)")
    ap.add_argument("--fail", nargs="?", const="UNAVAILABLE", default=None, metavar="CODE",
                    help="answer every call with this gRPC status (default UNAVAILABLE)")
    ap.add_argument("--empty-statuses", action="store_true", help="answer with no per-descriptor statuses")
    ap.add_argument("--limit", action="append", default=[], type=parse_limit,
                    metavar="DOMAIN:KEY=VALUE[,KEY=VALUE...]:REQUESTS_PER_UNIT:UNIT",
                    help="a configured limit for descriptors without an override (repeatable)")
    a = ap.parse_args(argv)
    if a.fail and not hasattr(grpc.StatusCode, a.fail):
        ap.error(f"--fail: unknown gRPC status {a.fail}")
    srv = RateLimitServer(a.redis_port, port=a.port, host=a.host, redis_host=a.redis_host, delay_ms=a.delay_ms,
                          fail=a.fail, empty_statuses=a.empty_statuses, limits=dict(a.limit)).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(f"listening on {a.host}:{srv.port}", flush=True)
    done.wait()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

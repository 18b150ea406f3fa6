"""Traffic for the fault tests: a replay storm (one signed request sent many times at once to every
Envoy, and earlier ones sent again), fresh signed requests at a steady rate, and a record of every
answer with its time, so that a test can line the answers up with the faults it caused."""
import collections
import concurrent.futures
import http.client
import random
import threading
import time

from harness.signer import sign

Result = collections.namedtuple("Result", "start end kind nonce envoy status code")


def send(port, method, path, headers, timeout=10.0):
    """One request on a fresh connection: (status, X-Ca-Error-Code); status 0 when no answer came
    (a refused connection or a hang past `timeout`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("x-ca-error-code")
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


class Record:
    def __init__(self):
        self.lock = threading.Lock()
        self.results = []

    def add(self, r):
        with self.lock:
            self.results.append(r)

    def snapshot(self):
        with self.lock:
            return list(self.results)


class Traffic:
    """Runs until stop(): every `storm_every` s a new signed request sent `copies` times at once over
    all `ports`, plus `replays` earlier storm requests sent again; and `fresh_rate` fresh signed
    requests a second. Every answer lands in `record`."""

    def __init__(self, ports, key, secret, path="/orders/1", storm_every=0.5, copies=12, replays=4,
                 fresh_rate=20.0, workers=32):
        self.ports, self.key, self.secret, self.path = list(ports), key, secret, path
        self.storm_every, self.copies, self.replays, self.fresh_rate = storm_every, copies, replays, fresh_rate
        self.record = Record()
        self.pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.stopping = threading.Event()
        self.storms = []   # (nonce, headers) of every storm request so far
        self.threads = [threading.Thread(target=self._storm, daemon=True),
                        threading.Thread(target=self._fresh, daemon=True)]
        self.t0 = None

    def _one(self, kind, nonce, envoy, headers):
        start = time.monotonic()
        status, code = send(self.ports[envoy], "GET", self.path, headers)
        self.record.add(Result(start, time.monotonic(), kind, nonce, envoy, status, code))

    def _storm(self):
        rng = random.Random(7)
        while not self.stopping.is_set():
            h = sign("GET", self.path, self.key, self.secret)
            nonce = h["x-ca-nonce"]
            self.storms.append((nonce, h))
            for i in range(self.copies):
                self.pool.submit(self._one, "storm", nonce, i % len(self.ports), h)
            for nonce_h in rng.sample(self.storms, min(self.replays, len(self.storms))):
                for envoy in range(len(self.ports)):
                    self.pool.submit(self._one, "replay", nonce_h[0], envoy, nonce_h[1])
            self.stopping.wait(self.storm_every)

    def _fresh(self):
        i = 0
        next_at = time.monotonic()
        while not self.stopping.is_set():
            h = sign("GET", self.path, self.key, self.secret)
            self.pool.submit(self._one, "fresh", h["x-ca-nonce"], i % len(self.ports), h)
            i += 1
            next_at += 1.0 / self.fresh_rate
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        self.pool.shutdown(wait=True)
        return self.record.snapshot()


class Probe:
    """A write to etcd every `every` s (EtcdCluster.writable): when a quorum was reachable."""

    def __init__(self, cluster, every=0.05):
        self.cluster, self.every = cluster, every
        self.samples = []   # (monotonic time, writable)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.is_set():
            t = time.monotonic()
            self.samples.append((t, self.cluster.writable()))
            self.stopping.wait(max(0.0, self.every - (time.monotonic() - t)))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join()
        return self.samples

    def outages(self):
        """[(from, to)]: from the first failed write to the first write that succeeded again."""
        out, start = [], None
        for t, ok in self.samples:
            if not ok and start is None:
                start = t
            elif ok and start is not None:
                out.append((start, t))
                start = None
        if start is not None:
            out.append((start, float("inf")))
        return out

"""An HTTP backend that echoes what it received as JSON: method, path, headers, body."""
import json
import time
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _special(self):
        """Test endpoints: /bytes/N?type=CT, /status/N, /result/CODE?type=CT, /hang/SECONDS, /flaky (failing
        with 500 after /toggle?fail=1, until /toggle?fail=0)."""
        from urllib.parse import parse_qs, urlsplit
        u = urlsplit(self.path)
        parts = u.path.strip("/").split("/")
        q = parse_qs(u.query)
        if parts[0] == "bytes" and len(parts) > 1:
            return 200, q.get("type", ["application/json"])[0], b"a" * int(parts[1])
        if parts[0] == "status" and len(parts) > 1:
            return int(parts[1]), "application/json", json.dumps({"error": "backend says " + parts[1]}).encode()
        if parts[0] == "result" and len(parts) > 1:
            return 200, q.get("type", ["application/json"])[0], json.dumps({"result_code": parts[1], "req_msg_id": "r-1"}).encode()
        if parts[0] == "hang":
            time.sleep(float(parts[1]) if len(parts) > 1 else 5)
            return 200, "application/json", b"{}"
        if parts[0] == "toggle":
            _Echo.failing = q.get("fail", ["0"])[0] == "1"
            return 200, "application/json", b"{}"
        if parts[0] == "coded" and len(parts) > 1:
            # A backend that sends the gateway's error headers itself (the gateway must remove them).
            return int(parts[1]), "application/json", b"{}", [("x-ca-error-code", "A403IS"),
                                                              ("x-ca-error-message", "forged by the backend")]
        if parts[0] == "flaky":
            return (500 if _Echo.failing else 200), "application/json", b"{}"
        return None

    failing = False

    def _body(self):
        """The request body, with a Content-Length or chunked (trailers read and dropped)."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        body = self._body()
        special = self._special()
        if special:
            status, ctype, out, *extra = special
            self.send_response(status)
            for name, value in (extra[0] if extra else []):
                self.send_header(name, value)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        out = json.dumps({
            "backend": self.server.name,
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        from urllib.parse import parse_qs, urlsplit
        for vary in parse_qs(urlsplit(self.path).query).get("vary", []):
            self.send_header("vary", vary)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    # Bursts of parallel connections from several Envoy workers must not overflow the listen backlog.
    request_queue_size = 512
    daemon_threads = True


class EchoBackend:
    """`name` is echoed back as `backend`, so a test can tell two backends apart."""

    def __init__(self, port=0, name="echo"):
        self.server = _Server(("127.0.0.1", port), _Echo)
        self.server.name = name
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    import sys
    with EchoBackend(int(sys.argv[1]) if len(sys.argv) > 1 else 0) as b:
        print(f"echo backend on 127.0.0.1:{b.port}", flush=True)
        threading.Event().wait()

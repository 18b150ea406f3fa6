"""A small app registry for the tests: serves one JSON document with an ETag, answers 304 to a matching
If-None-Match, and can be switched to serve an invalid document, fail, or stop."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        reg = self.server.registry
        with reg.lock:
            reg.requests.append(dict(self.headers))
            mode, body, etag = reg.mode, reg.body, reg.etag
        if mode == "fail":
            self._send(500, b"{}", None)
        elif mode == "invalid":
            self._send(200, b'{"apps": [ { "appId": 1 } ]', '"broken"')
        elif self.headers.get("if-none-match") == etag:
            self._send(304, b"", etag)
        else:
            self._send(200, body, etag)

    def _send(self, status, body, etag):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        if etag:
            self.send_header("etag", etag)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class RegistryServer:
    def __init__(self, document=None):
        self.lock = threading.Lock()
        self.requests = []
        self.mode = "serve"
        self.version = 0
        self.publish(document or {"apps": [], "authorizations": []})
        self.server = None
        self.port = None

    def publish(self, document):
        with self.lock:
            self.version += 1
            self.body = json.dumps(document).encode()
            self.etag = f'"v{self.version}"'

    def start(self, port=0):
        self.server = ThreadingHTTPServer(("127.0.0.1", port or self.port or 0), _Handler)
        self.server.daemon_threads = True
        self.server.registry = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

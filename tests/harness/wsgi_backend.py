"""A WSGI backend on Python's own wsgiref: answers, as JSON, the environ a WSGI application sees (the
HTTP_* variables, PATH_INFO, QUERY_STRING, REQUEST_METHOD). A WSGI server names a header HTTP_ + the
name upper-cased with '-' turned into '_', so `X-Ca-App-Id` and `X_Ca_App_Id` are the same variable to
the application (wsgiref joins the values with a comma)."""
import json
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


def app(environ, start_response):
    seen = {k: v for k, v in environ.items()
            if k.startswith("HTTP_") or k in ("PATH_INFO", "QUERY_STRING", "REQUEST_METHOD")}
    out = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


class _Handler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class WsgiBackend:
    """`with WsgiBackend() as w:` serves `app` on 127.0.0.1:`w.port` from a thread."""

    def __init__(self, port=0):
        self.server = make_server("127.0.0.1", port, app, server_class=_Server, handler_class=_Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

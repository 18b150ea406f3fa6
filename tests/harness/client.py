"""One HTTP/1.1 request on a fresh connection, and the response as the tests read it."""
import http.client
import json


class Response:
    def __init__(self, status, headers, body, pairs=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.pairs = pairs if pairs is not None else list(headers.items())

    def header(self, name):
        return self.headers.get(name.lower())

    def header_all(self, name):
        """Every value of a header, in the order received."""
        return [v for k, v in self.pairs if k.lower() == name.lower()]

    @property
    def code(self):
        return self.header("x-ca-error-code")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def call(port, method, path, headers=None, body=None):
    """One request on a fresh connection; header values may be bytes (sent as is)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        body = body.encode() if isinstance(body, str) else body
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.getheaders())
    finally:
        conn.close()

"""Raw requests the ordinary clients cannot make: HTTP/2 (prior knowledge) with request trailers, and
HTTP/1.1 chunked bodies with trailers or with repeated header lines."""
import socket

import h2.config
import h2.connection
import h2.events

from harness.client import Response as Reply


def h2_request(port, method, path, headers, body=b"", trailers=None, timeout=5):
    """One HTTP/2 request on a new h2c connection: HEADERS, then DATA (if any), then a trailing
    HEADERS frame (if `trailers`) that ends the stream."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        head = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost")]
        head += [(k.lower(), v) for k, v in headers.items()]
        conn.send_headers(sid, head, end_stream=not body and not trailers)
        if body:
            conn.send_data(sid, body, end_stream=not trailers)
        if trailers:
            conn.send_headers(sid, list(trailers.items()), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, out_headers, data = None, {}, b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the response ended")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    out_headers = {k: v for k, v in ev.headers}
                    status = int(out_headers.get(":status", 0))
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    return Reply(status, out_headers, data)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise ConnectionError(f"stream reset: {ev.error_code}")
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()


def http1_raw(port, method, path, headers, body=None, trailers=None, timeout=5):
    """One HTTP/1.1 request written by hand. `headers` is a list of (name, value) pairs (repeats
    allowed); with `trailers` the body is sent chunked and ends with them."""
    lines = [f"{method} {path} HTTP/1.1", "host: localhost", "connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    payload = b""
    if trailers is not None:
        lines.append("transfer-encoding: chunked")
        if body:
            payload += f"{len(body):x}\r\n".encode() + body + b"\r\n"
        payload += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in trailers.items()).encode() + b"\r\n"
    elif body is not None:
        if not any(k.lower() == "content-length" for k, _ in headers):
            lines.append(f"content-length: {len(body)}")  # a caller's own (say, a lying one) is kept
        payload = body
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    first, *header_lines = head.decode("latin-1").split("\r\n")
    out = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    if "chunked" in out.get("transfer-encoding", ""):
        body, rest2 = b"", rest
        while rest2:
            size_line, _, rest2 = rest2.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body, rest2 = body + rest2[:size], rest2[size + 2:]
        rest = body
    return Reply(int(first.split()[1]), out, rest)

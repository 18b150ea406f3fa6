"""An Aliyun digest-signature client written from Aliyun's published signing rules, independently of the filter's
code: the tests sign with this (and with Alibaba's own SDK) and the filter must agree."""
import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import quote, unquote_plus, unquote

EXCLUDED = {"x-ca-signature", "x-ca-signature-headers", "accept", "content-md5", "content-type", "date"}


def _params(query, form):
    """Decoded (name, value) pairs; first value per name, the form's before the query's (Alibaba's SDKs
    put the form parameters over the query's); sorted by name bytes."""
    seen = {}
    for raw in (form, query):
        if not raw:
            continue
        for piece in raw.split("&"):
            if not piece:
                continue
            name, eq, value = piece.partition("=")
            name = unquote_plus(name)
            if name not in seen:
                seen[name] = unquote_plus(value) if eq else ""
    return sorted(seen.items(), key=lambda kv: kv[0].encode())


def string_to_sign(method, path, headers, form_body=None):
    """`path` is the request target as sent (path?query); `headers` a dict as sent."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = [method]
    for name in ("accept", "content-md5", "content-type", "date"):
        lines.append(lower.get(name, ""))
    out = "\n".join(lines) + "\n"
    listed = [n.strip() for n in lower.get("x-ca-signature-headers", "").split(",")]
    listed = sorted({n for n in listed if n and n.lower() not in EXCLUDED}, key=lambda n: n.encode())
    for n in listed:
        out += f"{n}:{lower.get(n.lower(), '')}\n"
    raw_path, _, query = path.partition("?")
    ct = lower.get("content-type", "")
    form = form_body if ct.lower().startswith("application/x-www-form-urlencoded") else None
    out += unquote(raw_path)
    params = _params(query, form)
    if params:
        out += "?" + "&".join(f"{k}={v}" if v else k for k, v in params)
    return out


def signature(secret, sts, alg="HmacSHA256"):
    digest = hashlib.sha256 if alg == "HmacSHA256" else hashlib.sha1
    return base64.b64encode(hmac.new(secret.encode(), sts.encode("utf-8", "surrogateescape"), digest).digest()).decode()


def sign(method, path, key, secret, headers=None, body=b"", alg="HmacSHA256", nonce=True, timestamp=True,
         signed=("x-ca-key", "x-ca-nonce", "x-ca-timestamp", "x-ca-signature-method"), content_md5=False):
    """Returns the full header dict to send."""
    h = dict(headers or {})
    h["x-ca-key"] = key
    h["x-ca-signature-method"] = alg
    if timestamp:
        h["x-ca-timestamp"] = str(int(time.time() * 1000)) if timestamp is True else str(timestamp)
    if nonce:
        h["x-ca-nonce"] = str(uuid.uuid4()) if nonce is True else nonce
    if content_md5:
        h["content-md5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
    h["x-ca-signature-headers"] = ",".join(n for n in signed if n.lower() in {k.lower() for k in h})
    form = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    sts = string_to_sign(method, path, h, form)
    h["x-ca-signature"] = signature(secret, sts, alg)
    return h


def encode_path(path):
    return quote(path, safe="/")

"""Keys and tokens for the JWT tests, minted with PyJWT (independent of the filter), and a JWKS
server whose key set the test changes or takes down."""
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


class KeyPair:
    def __init__(self, alg, kid):
        self.alg, self.kid = alg, kid
        if alg.startswith(("RS", "PS")):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        elif alg in ("ES256", "ES384"):
            self.private = ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        else:
            import base64, os
            self.private = os.urandom(32)
            self.jwk = {"kty": "oct", "k": base64.urlsafe_b64encode(self.private).rstrip(b"=").decode()}
        if kid:
            self.jwk["kid"] = kid

    def token(self, kid=True, lifetime=600, **claims):
        body = {"sub": "user-1", "exp": int(time.time()) + lifetime, "jti": str(uuid.uuid4())}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": self.kid} if kid and self.kid else {}
        return jwt.encode(body, self.private, algorithm=self.alg, headers=headers)


class JwksServer:
    def __init__(self, keys):
        self.keys = list(keys)
        self.size = 0  # when larger than the key set, the document is padded with spaces (still JSON) to this size
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"keys": [k.jwk for k in outer.keys]}).encode()
                body += b" " * max(0, outer.size - len(body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

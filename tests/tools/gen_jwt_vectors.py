"""Mints the JWT test vectors of filter/core/tests/data/jwt_vectors.json with PyJWT (an implementation
independent of the filter's). Run again only to change the vectors: `.venv/bin/python tests/tools/gen_jwt_vectors.py`."""
import json
import os

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "filter", "core", "tests", "data", "jwt_vectors.json")
CLAIMS = {"sub": "user-1", "userId": "42", "iss": "https://issuer.example", "aud": "cagate", "exp": 4102444800,
          "jti": "vector-jti"}


def keypair(alg):
    if alg.startswith(("RS", "PS")):
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return k, json.loads(RSAAlgorithm.to_jwk(k.public_key()))
    if alg == "ES256":
        k = ec.generate_private_key(ec.SECP256R1())
        return k, json.loads(ECAlgorithm.to_jwk(k.public_key()))
    if alg == "ES384":
        k = ec.generate_private_key(ec.SECP384R1())
        return k, json.loads(ECAlgorithm.to_jwk(k.public_key()))
    if alg == "EdDSA":
        k = ed25519.Ed25519PrivateKey.generate()
        return k, json.loads(OKPAlgorithm.to_jwk(k.public_key()))
    secret = os.urandom(48)
    import base64
    return secret, {"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}


vectors = []
for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"]:
    priv, pub = keypair(alg)
    other, _ = keypair(alg)
    pub["kid"] = f"k-{alg}"
    vectors.append({
        "alg": alg,
        "jwk": pub,
        "token": jwt.encode(CLAIMS, priv, algorithm=alg, headers={"kid": f"k-{alg}"}),
        "token_no_kid": jwt.encode(CLAIMS, priv, algorithm=alg),
        "wrong_key_token": jwt.encode(CLAIMS, other, algorithm=alg, headers={"kid": f"k-{alg}"}),
    })
with open(OUT, "w") as f:
    json.dump(vectors, f, indent=1)
print(f"wrote {len(vectors)} vectors to {os.path.normpath(OUT)}")

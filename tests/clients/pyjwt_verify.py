"""Verifies an m2m-auth JWT the way a Python API would: discovery, then PyJWT's PyJWKClient.

usage: pyjwt_verify.py BASE_URL TOKEN AUDIENCE ISSUER  -> prints the verified claims as JSON
"""
import json
import sys
import urllib.request

import jwt

base, token, audience, issuer = sys.argv[1:5]
with urllib.request.urlopen(f"{base}/.well-known/openid-configuration", timeout=10) as response:
    discovery = json.load(response)
client = jwt.PyJWKClient(discovery["jwks_uri"])
key = client.get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    key.key,
    algorithms=discovery["id_token_signing_alg_values_supported"],
    audience=audience,
    issuer=issuer,
)
print(json.dumps(claims))

"""A standard OAuth 2.0 client (Authlib) fetches a token by the client-credentials grant.

usage: authlib_client_credentials.py TOKEN_ENDPOINT CLIENT_ID SECRET METHOD [SCOPE]
METHOD is client_secret_basic or client_secret_post. Prints the token response as JSON; on an
OAuth error, prints {"error": ..., "status": ...} and exits 3.
"""
import json
import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError


def main():
    endpoint, client_id, secret, method = sys.argv[1:5]
    scope = sys.argv[5] if len(sys.argv) > 5 else None
    session = OAuth2Session(client_id, secret, token_endpoint_auth_method=method, scope=scope)
    try:
        token = session.fetch_token(endpoint, grant_type="client_credentials")
    except OAuthError as e:
        print(json.dumps({"error": e.error, "description": e.description}))
        sys.exit(3)
    print(json.dumps(dict(token)))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The README's walk-through as one script: a vendor's flow with curl, from vendor authentication
# to the key the vendor's APIs verify with. Run it against a running m2m-local (or any
# deployment, with M2M_URL) as the vendor credential the server printed on its first start:
#
#   M2M_VENDOR_CLIENT_ID=<clientId> M2M_VENDOR_SECRET=<secret> bash scripts/walkthrough.sh
#
# Needs curl and jq. It stops at the first error (a script, not a terminal, so `set -e` is
# safe here). Everything below the next line is the README's block, word for word (the docs
# check, scripts/docs_check.py, holds the two equal); run it once per server: it creates
# fixed ids.
set -euo pipefail

BASE=${M2M_URL:-http://127.0.0.1:8080}
# Prints a JWT's claims (decoded, not verified: APIs verify with the JWKS of step 10).
claims() { jq -R 'split(".")[1] | gsub("-";"+") | gsub("_";"/") | @base64d | fromjson'; }

# 1. Vendor authentication: the vendor credential for a vendor token (valid one hour).
VENDOR_TOKEN=$(curl --fail-with-body -sS -X POST "$BASE/auth/vendor" \
  -H 'content-type: application/json' \
  -d "{\"clientId\":\"${M2M_VENDOR_CLIENT_ID:?set M2M_VENDOR_CLIENT_ID first}\",\"secret\":\"${M2M_VENDOR_SECRET:?set M2M_VENDOR_SECRET first}\"}" \
  | jq -r .token)

# 2. The directory: a permission, a role that holds it, tenant acme, and alice as its admin.
curl --fail-with-body -sS -X POST "$BASE/identity/resources/permissions/v1" -H "x-access-token: $VENDOR_TOKEN" \
  -H 'content-type: application/json' -d '{"id":"deploy-write","key":"deploy.write","name":"Deploy"}' | jq -c .
curl --fail-with-body -sS -X POST "$BASE/identity/resources/roles/v1" -H "x-access-token: $VENDOR_TOKEN" \
  -H 'content-type: application/json' -d '{"id":"admin","key":"admin","permissionIds":["deploy-write"]}' | jq -c .
curl --fail-with-body -sS -X PUT "$BASE/identity/resources/tenants/v1/acme" -H "x-access-token: $VENDOR_TOKEN" \
  -H 'content-type: application/json' -d '{"name":"Acme Inc."}' | jq -c .
curl --fail-with-body -sS -X PUT "$BASE/identity/resources/users/v1/alice" -H "x-access-token: $VENDOR_TOKEN" \
  -H 'content-type: application/json' \
  -d '{"email":"alice@acme.test","tenants":[{"tenantId":"acme","roleIds":["admin"]}]}' | jq -c .

# 3. A personal token for alice in acme, expiring in a day.
USER_TOKEN=$(curl --fail-with-body -sS -X POST "$BASE/identity/resources/users/api-tokens/v1" \
  -H "x-access-token: $VENDOR_TOKEN" \
  -H 'frontegg-tenant-id: acme' -H 'frontegg-user-id: alice' \
  -H 'content-type: application/json' \
  -d '{"description":"alice laptop","expiresInMinutes":1440}')
echo "$USER_TOKEN" | jq .

# 4. A tenant token for acme, with the admin role.
TENANT_TOKEN=$(curl --fail-with-body -sS -X POST "$BASE/identity/resources/tenants/api-tokens/v2" \
  -H "authorization: Bearer $VENDOR_TOKEN" -H 'frontegg-tenant-id: acme' \
  -H 'content-type: application/json' \
  -d '{"description":"deploy bot","roleIds":["admin"]}')
echo "$TENANT_TOKEN" | jq .

# 5. The customer's machine exchanges the tenant token's clientId and secret for a JWT.
JWT=$(curl --fail-with-body -sS -X POST "$BASE/identity/resources/auth/v1/api-token" \
  -H 'content-type: application/json' \
  -d "$(echo "$TENANT_TOKEN" | jq '{clientId, secret}')")
echo "$JWT" | jq '{expiresIn, expires}'

# 6. What the JWT says: type tenantApiToken, tenantId acme, roles [admin], permissions [deploy.write].
echo "$JWT" | jq -r .accessToken | claims

# 7. The personal token through v2 (snake_case answer): type userApiToken, userId alice,
#    and alice's current roles and permissions in acme.
curl --fail-with-body -sS -X POST "$BASE/identity/resources/auth/v2/api-token" \
  -H 'content-type: application/json' \
  -d "$(echo "$USER_TOKEN" | jq '{clientId, secret}')" | jq -r .access_token | claims

# 8. Renew with the refresh token (single use: a second try answers 401).
curl --fail-with-body -sS -X POST "$BASE/identity/resources/auth/v1/api-token/token/refresh" \
  -H 'content-type: application/json' \
  -d "$(echo "$JWT" | jq '{refreshToken}')" | jq '{expiresIn, expires}'

# 9. Management: the tenant's tokens (never a secret), then deleting alice deletes her tokens.
curl --fail-with-body -sS "$BASE/identity/resources/tenants/api-tokens/v1" -H "x-access-token: $VENDOR_TOKEN" \
  -H 'frontegg-tenant-id: acme' | jq -c '.[] | {clientId, description, roleIds, lastUsedAt}'
curl --fail-with-body -sS -X DELETE "$BASE/identity/resources/users/v1/alice" -H "x-access-token: $VENDOR_TOKEN" | jq -c .
curl -sS -o /dev/null -w 'personal token after deleting alice: %{http_code}\n' \
  -X POST "$BASE/identity/resources/auth/v1/api-token" -H 'content-type: application/json' \
  -d "$(echo "$USER_TOKEN" | jq '{clientId, secret}')"

# 10. The key the vendor's APIs verify with: a JWKS, or a PEM for Frontegg's SDKs.
curl --fail-with-body -sS "$BASE/.well-known/jwks.json" | jq '.keys[0] | {kid, alg, use}'
curl --fail-with-body -sS "$BASE/identity/resources/configurations/v1" -H "x-access-token: $VENDOR_TOKEN" | jq -r .publicKey

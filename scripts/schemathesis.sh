#!/usr/bin/env bash
# Schema-driven testing: schemathesis generates requests from the served /openapi.json and
# checks every answer against it, with every check on: no 5xx; status codes, content types,
# headers and bodies as documented; every request the document allows is accepted and every
# one it forbids refused; and sequences of calls along the links it infers (the stateful
# phase). scripts/schemathesis.toml counts a 413 (a body over 64 KiB) as a refusal. Runs
# against m2m-local on its embedded store, authenticated as the vendor so that it reaches past
# the 401s. Repeatable and bounded: a fixed seed and
# M2M_SCHEMATHESIS_EXAMPLES (default 60) cases per operation, about a minute, and at most
# 10 minutes whatever happens.
#
#   scripts/schemathesis.sh [PATH_TO_M2M_LOCAL]   (default target/debug/m2m-local)
#
# Needs schemathesis, curl and jq; scripts/test.sh installs them and runs this after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

server_bin="${1:-target/debug/m2m-local}"
examples="${M2M_SCHEMATHESIS_EXAMPLES:-60}"
schemathesis="${M2M_VENV:-.venv}/bin/schemathesis"
[ -x "$server_bin" ] || cargo build --quiet --bin m2m-local
data="$(mktemp -d)"
log="$data/server.log"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
M2M_DATA_DIR="$data" M2M_LISTEN="127.0.0.1:$port" M2M_BCRYPT_COST=4 "$server_bin" > "$log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
base="http://127.0.0.1:$port"
client_id=$(sed -n 's/^ *M2M_VENDOR_CLIENT_ID=//p' "$log")
secret=$(sed -n 's/^ *M2M_VENDOR_SECRET=//p' "$log")
token=$(curl -sf "$base/auth/vendor" -H 'content-type: application/json' \
    -d "{\"clientId\":\"$client_id\",\"secret\":\"$secret\"}" | jq -r .token)

# A tenant, a role and a permission to find, so that not every generated request is a 404.
vendor=(-H "x-access-token: $token" -H 'content-type: application/json')
curl -sf -X PUT "${vendor[@]}" "$base/identity/resources/tenants/v1/acme" -d '{}' > /dev/null
curl -sf "${vendor[@]}" "$base/identity/resources/permissions/v1" \
    -d '{"key":"reports.read","name":"Read reports"}' > /dev/null

# One worker: Hypothesis describes its strategies through `ast.parse`, which CPython 3.11 does
# not run safely in two threads at once ("SystemError: AST constructor recursion depth
# mismatch", reported as a flaky runtime error of whichever operation it hit); one is as fast.
timeout 600 "$schemathesis" --config-file scripts/schemathesis.toml run "$base/openapi.json" \
    --header "x-access-token: $token" \
    --checks all \
    --max-examples "$examples" \
    --workers 1 \
    --seed 20261130 \
    --suppress-health-check all \
    --warnings off

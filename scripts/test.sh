#!/usr/bin/env bash
# Runs every check the project has, on a fresh machine as on a developer's:
#   1. installs moto (DynamoDB + KMS emulator), cfn-lint, PyJWT, openapi-spec-validator, Authlib,
#      schemathesis and Frontegg's Python SDK into .venv, and Frontegg's Node SDK, openid-client, jose and
#      playwright-core into tests/clients/node, pinned; curl, jq and chromium from Debian;
#   2. starts moto on 127.0.0.1 on a free port (stopped again on exit, however the run ends);
#   3. cargo fmt --check, cargo clippy -D warnings, cfn-lint template.yaml, cargo test --workspace
#      (unit, property and end-to-end tests), then schemathesis against the local server;
#   4. the docs: mdBook (pinned, into .tools) builds the book, and scripts/docs_check.py runs every
#      shell block of README.md, the book, SECURITY.md and CONTRIBUTING.md against a fresh local
#      server and checks the paths and tests they name.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
PYJWT_VERSION="2.15.1"
OPENAPI_VALIDATOR_VERSION="0.9.0"
FRONTEGG_VERSION="3.0.4"
FASTAPI_VERSION="0.165.0"
AUTHLIB_VERSION="1.9.10"
SCHEMATHESIS_VERSION="4.32.5"
OPENAPI_PYTHON_CLIENT_VERSION="0.29.1"
MDBOOK_VERSION="0.5.4"
VENV="${M2M_VENV:-.venv}"
PY=python3

step() { printf '\n==> %s\n' "$*"; }

step "Python tools in $VENV (moto, cfn-lint, PyJWT, openapi-spec-validator, Frontegg's SDK, Authlib, schemathesis)"
want="moto==$MOTO_VERSION cfn-lint==$CFN_LINT_VERSION pyjwt==$PYJWT_VERSION openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION frontegg==$FRONTEGG_VERSION fastapi==$FASTAPI_VERSION authlib==$AUTHLIB_VERSION schemathesis==$SCHEMATHESIS_VERSION"
if [ ! -f "$VENV/.installed" ] || [ "$(cat "$VENV/.installed")" != "$want" ]; then
    $PY -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "PyJWT[crypto]==$PYJWT_VERSION" \
        "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION" \
        "frontegg[fastapi]==$FRONTEGG_VERSION" "fastapi==$FASTAPI_VERSION" \
        "authlib==$AUTHLIB_VERSION" "schemathesis==$SCHEMATHESIS_VERSION"
    echo "$want" > "$VENV/.installed"
fi

# Apart, so that its dependencies and the tools' above never have to agree; the suite finds it
# beside M2M_TEST_PYTHON.
step "openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION in $VENV/codegen (a client generated from /openapi.json)"
if [ "$(cat "$VENV/codegen/.installed" 2>/dev/null)" != "$OPENAPI_PYTHON_CLIENT_VERSION" ]; then
    $PY -m venv "$VENV/codegen"
    "$VENV/codegen/bin/pip" install --quiet --disable-pip-version-check \
        "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION"
    echo "$OPENAPI_PYTHON_CLIENT_VERSION" > "$VENV/codegen/.installed"
fi

step "Node clients: Frontegg's SDK, openid-client, jose, playwright-core (tests/clients/node)"
npm ci --prefix tests/clients/node --no-audit --no-fund --loglevel=error

step "mdBook $MDBOOK_VERSION in .tools (the book's build)"
if [ "$(.tools/bin/mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --quiet \
        --no-default-features --features search --root .tools
fi

step "moto on 127.0.0.1"
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VENV/bin/python" scripts/moto_server.py 127.0.0.1 "$port" > "${TMPDIR:-/tmp}/m2m-moto-$port.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { echo "moto did not start:"; cat "${TMPDIR:-/tmp}/m2m-moto-$port.log"; exit 1; }
    sleep 0.2
done
echo "moto pid $moto_pid on port $port"

step "curl, jq (the README walk-through test) and Debian's Chromium (the portal's browser test)"
for tool in curl jq chromium; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool"; }
done

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The functions as Lambda builds them: without the local feature (no embedded store, no local
# server), which must compile and lint on its own.
cargo clippy -p m2m-functions --no-default-features --bins -- -D warnings

step "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml

step "cargo test --workspace"
export M2M_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export M2M_TEST_PYTHON="$(cd "$VENV" && pwd)/bin/python"
log="$(mktemp)"
# A failing test's panic message, not a backtrace, is what the end of the output should show.
RUST_BACKTRACE=0 cargo test --workspace 2>&1 | tee "$log"

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s; if (p == 0) exit 1 }' "$log"
rm -f "$log"

step "schemathesis against /openapi.json on m2m-local (${M2M_SCHEMATHESIS_EXAMPLES:-60} cases per operation)"
M2M_VENV="$VENV" scripts/schemathesis.sh target/debug/m2m-local

step "the book (mdbook build docs) and the docs check (every shell block, against m2m-local)"
.tools/bin/mdbook build docs
M2M_VENV="$VENV" python3 scripts/docs_check.py

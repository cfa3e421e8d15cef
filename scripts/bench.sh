#!/usr/bin/env bash
# The benchmark (a measurement, not a test). Builds the release m2m-local and the floors
# example, measures the floors (one bcrypt verify, one RS256 signature), starts m2m-local on a
# free loopback port with a fresh embedded store, and drives it with wrk (from Debian) and a
# Python client: token creation, exchanges at 1 and 16 connections with fresh and with repeated
# credentials, the listing, exchange time with 10 and 10,000 roles, and the flood (40
# connections of well-formed wrong secrets for BENCH_SECONDS, default 20, while a legitimate
# client exchanges and reads the JWKS); the server's RSS; then the exchange Lambda binary as
# deployed (its size, and exec to first Runtime API poll against a stand-in, with moto). Prints
# Markdown tables (also written to docs/src/bench-results.md) and stops everything it started. The per-token rate limit is lifted for the run, which exchanges
# one token thousands of times a second.
#
#   bash scripts/bench.sh            # BENCH_SECONDS=60 BENCH_CONNECTIONS=40 to change;
#                                    # BENCH_ALL_FUNCTIONS=0 to skip every function's size
set -euo pipefail
cd "$(dirname "$0")/.."

# What it prints is also written to docs/src/bench-results.md, which the book's performance page
# includes: the docs quote no figure by hand. A run that fails leaves the file as it was.
if [ -z "${BENCH_WRITING_RESULTS:-}" ]; then
    results=docs/src/bench-results.md
    set +e
    {
        echo "<!-- Written by \`bash scripts/bench.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores,"
        echo "bcrypt cost ${M2M_BCRYPT_COST:-10}); a new run replaces it: do not edit by hand. -->"
        echo
        BENCH_WRITING_RESULTS=1 bash "$0" "$@"
    } | tee "$results.partial"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" = 0 ]; then mv "$results.partial" "$results"; else rm -f "$results.partial"; fi
    exit "$status"
fi

seconds="${BENCH_SECONDS:-20}"
connections="${BENCH_CONNECTIONS:-40}"

if ! command -v wrk >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    # To stderr: what this script prints to stdout is the results file.
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk; } >&2
fi

cargo build --release --quiet --bin m2m-local --example floors
floors=$(target/release/examples/floors)

work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
M2M_DATA_DIR="$work/data" M2M_LISTEN="127.0.0.1:$port" RUST_LOG=warn \
    M2M_TOKEN_RATE_LIMIT_PER_MINUTE=1000000 \
    target/release/m2m-local > "$work/server.out" 2> "$work/server.err" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.err"; exit 1; }
    sleep 0.1
done
vendor_id=$(sed -n 's/^ *M2M_VENDOR_CLIENT_ID=//p' "$work/server.out")
vendor_secret=$(sed -n 's/^ *M2M_VENDOR_SECRET=//p' "$work/server.out")

echo "m2m-local (release, bcrypt cost ${M2M_BCRYPT_COST:-10}) on 127.0.0.1:$port, $(nproc) cores"
python3 scripts/bench/client.py "$port" "$server" "$vendor_id" "$vendor_secret" "$work" \
    "$seconds" "$connections" "$floors"

# The functions as deployed: the exchange binary at [profile.aws-lambda] (what
# scripts/sam-build.sh builds), its size, and its cold start: exec to its first poll of a
# stand-in of the Runtime API on loopback, its AWS calls at init going to moto (from the .venv
# that scripts/test.sh installs).
cargo build --profile aws-lambda --quiet --no-default-features --bin exchange
binary=target/aws-lambda/exchange
echo
echo "| the exchange function as deployed ($(uname -m) here) | result | |"
echo "|---|---|---|"
echo "| binary, stripped, [profile.aws-lambda], without the local feature | $(awk "BEGIN {printf \"%.1f\", $(stat -c %s "$binary") / 1048576}") MiB | goal at most 10 MiB |"
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import moto, boto3' 2>/dev/null; then
    moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    .venv/bin/python scripts/moto_server.py 127.0.0.1 "$moto_port" > "$work/moto.log" 2>&1 &
    moto=$!
    trap 'kill "$server" "$moto" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break
        sleep 0.1
    done
    cold=$(.venv/bin/python scripts/bench/cold_start.py "$binary" "http://127.0.0.1:$moto_port" 20)
    field() { sed -n "s/.*$1=\([0-9.-]*\).*/\1/p" <<< "$cold"; }
    echo "| exec to first Runtime API poll: median of 20 | $(field poll) ms | range $(field poll_range) ms; goal under 25 ms |"
    echo "| exec to the first invocation's answer (app built beside the poll: SDK config, KMS GetPublicKey, one GetItem, all to moto) | $(field answer) ms | range $(field answer_range) ms |"
else
    echo "| exec to first Runtime API poll | not measured | run scripts/test.sh once (it installs moto) |"
fi

# Every function's binary at the same profile (each a fat-LTO link: this takes a while).
# BENCH_ALL_FUNCTIONS=0 skips it.
if [ "${BENCH_ALL_FUNCTIONS:-1}" != 0 ]; then
    cargo build --profile aws-lambda --quiet --no-default-features -p m2m-functions --bins
    echo
    echo "| function binary, stripped, [profile.aws-lambda], without the local feature | size | |"
    echo "|---|---|---|"
    for source in functions/src/bin/*.rs; do
        name=$(basename "$source" .rs)
        case "$name" in m2m-local | m2m-admin) continue ;; esac  # not functions
        echo "| $name | $(awk "BEGIN {printf \"%.1f\", $(stat -c %s "target/aws-lambda/$name") / 1048576}") MiB | goal at most 10 MiB |"
    done
fi

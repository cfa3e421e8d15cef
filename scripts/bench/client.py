#!/usr/bin/env python3
"""The benchmark's driver (scripts/bench.sh builds and starts the server, then calls this).

Against the running release m2m-local, in one run:
  - token creation (16 clients), then exchanges with wrk at 1 and 16 connections, of fresh
    credentials (each clientId and secret exchanged once: the bcrypt path) and of repeated ones
    (the same credentials again and again), and the token listing;
  - exchange time with 10 and with 10,000 roles in the directory;
  - directory reads and pages at 1,000 users and at 10,000 users in 1,000 tenants;
  - the flood: 40 connections of well-formed wrong secrets (the known clientId with secrets
    that are not its own, and unknown clientIds) while a legitimate client exchanges and reads
    the JWKS;
  - the server's peak RSS.
Prints Markdown tables. Standard library only; wrk from Debian.
"""

import concurrent.futures
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
EXCHANGE = "/identity/resources/auth/v1/api-token"
TENANT_TOKENS = "/identity/resources/tenants/api-tokens/v1"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requests.lua")


def well_formed_secret():
    """A tenant-token secret with a valid checksum that nobody holds."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(43))
    n = zlib.crc32(body.encode())
    digits = []
    for _ in range(6):
        digits.append(ALPHABET[n % 62])
        n //= 62
    return "m2mt_" + body + "".join(reversed(digits))


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        took = (time.perf_counter() - started) * 1000
        return response.status, payload, took


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def wrk(port, workdir, seconds, connections, method, path, bodies=None, headers=()):
    """One wrk run; `bodies` (a list of JSON values) are sent in turn."""
    body_file = "-"
    if bodies is not None:
        body_file = os.path.join(workdir, f"bodies-{time.monotonic_ns()}.jsonl")
        with open(body_file, "w") as out:
            for body in bodies:
                out.write(json.dumps(body) + "\n")
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", SCRIPT,
         f"http://127.0.0.1:{port}", "--", method, path, body_file, *headers],
        stdout=subprocess.PIPE, text=True, check=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        sys.exit("wrk printed no result:\n" + out)
    result = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    result["rps"] = result["requests"] / result["seconds"]
    result["ok_rps"] = result["s2xx"] / result["seconds"]
    return result


class Bench:
    def __init__(self, port, vendor_id, vendor_secret, workdir):
        self.port, self.workdir = port, workdir
        c = Client(port)
        status, body, _ = c.call("POST", "/auth/vendor", {"clientId": vendor_id, "secret": vendor_secret})
        assert status == 200, (status, body)
        self.vendor = {"x-access-token": json.loads(body)["token"]}
        status, body, _ = c.call("PUT", "/identity/resources/tenants/v1/bench", {"name": "Bench"}, self.vendor)
        assert status == 200, (status, body)
        self.tenant = dict(self.vendor, **{"frontegg-tenant-id": "bench"})

    def parallel(self, count, clients, work):
        """Runs work(client, n) for n in range(count) on `clients` connections; returns results."""
        local = threading.local()

        def run(n):
            if not hasattr(local, "client"):
                local.client = Client(self.port)
            return work(local.client, n)

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            return list(pool.map(run, range(count)))

    def create_tokens(self, count, body=None, clients=None):
        """Creates `count` tenant tokens from one client per core (the bcrypt queue takes three
        per core; a 429 is retried after a moment)."""
        def create(client, _):
            while True:
                status, payload, took = client.call("POST", TENANT_TOKENS, body or {}, self.tenant)
                if status != 429:
                    break
                time.sleep(0.1)
            assert status == 201, (status, payload)
            token = json.loads(payload)
            return {"clientId": token["clientId"], "secret": token["secret"]}, took

        started = time.perf_counter()
        made = self.parallel(count, clients or os.cpu_count() or 1, create)
        seconds = time.perf_counter() - started
        return [t for t, _ in made], [ms for _, ms in made], seconds

    def wrk(self, *args, **kwargs):
        return wrk(self.port, self.workdir, *args, **kwargs)


def fresh_in_parallel(port, tokens, clients, seconds):
    """Exchanges each of `tokens` once from `clients` threads for `seconds`; returns the
    successful exchanges per second, their latencies and the 429s retried."""
    pending = list(reversed(tokens))
    lock = threading.Lock()
    done_ms, retries = [], [0]
    until = time.perf_counter() + seconds

    def client():
        c = Client(port)
        while time.perf_counter() < until:
            with lock:
                if not pending:
                    return
                credentials = pending.pop()
            while time.perf_counter() < until:
                status, body, took = c.call("POST", EXCHANGE, credentials)
                if status == 200:
                    with lock:
                        done_ms.append(took)
                    break
                assert status == 429, (status, body)
                with lock:
                    retries[0] += 1
                time.sleep(1)  # as Retry-After says

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if not pending:
        print("note: every fresh credential was used before the time was up", file=sys.stderr)
    return len(done_ms) / elapsed, done_ms, retries[0]


def throughput_rows(bench, floors, memory):
    rows = []
    tokens, create_ms, create_s = bench.create_tokens(600)
    rows.append((f"token creation, {os.cpu_count()} clients", f"{len(tokens) / create_s:.1f}/s",
                 f"p50 {percentile(create_ms, 50):.1f} ms, p99 {percentile(create_ms, 99):.1f} ms"))
    memory.append(("server RSS before the exchanges", f"{rss_mib(bench.pid, 'VmRSS'):.1f} MiB", ""))
    reset_peak_rss(bench.pid)

    cores = os.cpu_count() or 1
    bcrypt_floor = cores * 1000 / floors["bcrypt_ms"]
    sign_floor = cores * 1000 / floors["sign_ms"]

    first = bench.wrk(10, 1, "POST", EXCHANGE, tokens[:250])
    note = f"first exchange p50 = {first['p50_ms'] / floors['bcrypt_ms']:.2f} x bcrypt"
    if first["s2xx"] > 250:
        note += " (some credentials repeated)"
    rows.append(("exchange, fresh credentials, 1 connection", f"{first['ok_rps']:.1f}/s",
                 f"p50 {first['p50_ms']:.1f} ms, p99 {first['p99_ms']:.1f} ms; {note}"))
    # 16 clients, each taking the next credentials never exchanged; beyond the bcrypt queue
    # (three per core) a client is told to retry (429) and tries the same ones again after the
    # second that Retry-After names.
    fresh_rps, fresh_ms, retries = fresh_in_parallel(bench.port, tokens[250:], 16, 10)
    note = (f"{100 * fresh_rps / bcrypt_floor:.0f}% of cores/bcrypt ({bcrypt_floor:.1f}/s); "
            f"p50 {percentile(fresh_ms, 50):.0f} ms, p99 {percentile(fresh_ms, 99):.0f} ms; "
            f"{retries:,} told to retry")
    rows.append(("exchange, fresh credentials, 16 clients", f"{fresh_rps:.1f}/s", note))
    same = [tokens[0]]
    one = bench.wrk(10, 1, "POST", EXCHANGE, same)
    rows.append(("exchange, repeated credentials, 1 connection", f"{one['ok_rps']:.0f}/s",
                 f"p50 {one['p50_ms']:.2f} ms, p99 {one['p99_ms']:.2f} ms"))
    many = bench.wrk(10, 16, "POST", EXCHANGE, same)
    rows.append(("exchange, repeated credentials, 16 connections", f"{many['ok_rps']:.0f}/s",
                 f"p50 {many['p50_ms']:.2f} ms, p99 {many['p99_ms']:.2f} ms; "
                 f"{100 * many['ok_rps'] / sign_floor:.0f}% of cores/RS256 ({sign_floor:.0f}/s)"))
    memory.append(("server peak RSS during the exchanges (fresh and repeated)",
                   f"{rss_mib(bench.pid, 'VmHWM'):.1f} MiB", "goal under 40 MiB"))
    headers = [f"{k}: {v}" for k, v in bench.tenant.items()]
    listing = bench.wrk(5, 16, "GET", TENANT_TOKENS, None, headers)
    rows.append((f"listing the tenant's {len(tokens) + 1} tokens, 16 connections", f"{listing['ok_rps']:.0f}/s",
                 f"p50 {listing['p50_ms']:.1f} ms, p99 {listing['p99_ms']:.1f} ms"))
    errors = sum(int(r["s5xx"]) for r in (first, one, many, listing))
    rows.append(("5xx answers in these runs", str(errors), ""))
    return rows


def roles_rows(bench):
    """Exchange time of a token holding two roles, with 10 and then 10,000 roles in the directory."""
    c = Client(bench.port)

    def role(client, n):
        body = {"id": f"role-{n}", "key": f"role.{n}", "permissionIds": []}
        status, payload, _ = client.call("POST", "/identity/resources/roles/v1", body, bench.vendor)
        assert status == 201, (status, payload)

    bench.parallel(10, 4, role)
    token, _, _ = bench.create_tokens(1, {"roleIds": ["role-0", "role-1"]})
    rows = []
    for total in (10, 10_000):
        if total > 10:
            bench.parallel(total - 10, 8, lambda client, n: role(client, n + 10))
        for _ in range(100):  # settle: caches, the allocator, the plan of this token's reads
            c.call("POST", EXCHANGE, token[0])
        timings = [c.call("POST", EXCHANGE, token[0])[2] for _ in range(1000)]
        rows.append((f"exchange (repeated, token with 2 roles), {total:,} roles in the directory",
                     f"p50 {statistics.median(timings):.2f} ms", f"p99 {percentile(timings, 99):.2f} ms"))
    return rows


def directory_rows(bench):
    """Reads and pages of the directory at 1,000 users in 100 tenants, then at 10,000 users in
    1,000 tenants (ten members each): a page's time should follow the page, not the directory."""
    c = Client(bench.port)
    users_path = "/identity/resources/users/v1"

    def tenant(client, n):
        body = {"tenantId": f"org-{n:05}", "name": f"Org {n}"}
        status, payload, _ = client.call("POST", "/tenants/resources/tenants/v1", body, bench.vendor)
        assert status == 201, (status, payload)

    def user(client, n):
        headers = dict(bench.vendor, **{"frontegg-tenant-id": f"org-{n // 10:05}"})
        body = {"id": f"user-{n:06}", "email": f"user-{n}@example.test", "name": f"User {n}"}
        status, payload, _ = client.call("POST", users_path, body, headers)
        assert status == 201, (status, payload)

    def timed(path, headers, expect_items):
        for _ in range(20):  # settle
            c.call("GET", path, None, headers)
        timings = []
        for _ in range(200):
            status, payload, took = c.call("GET", path, None, headers)
            assert status == 200, (status, payload)
            timings.append(took)
        body = json.loads(payload)
        items = body.get("items", [body]) if isinstance(body, dict) else body
        assert len(items) == expect_items, (path, len(items))
        return f"p50 {statistics.median(timings):.2f} ms", f"p99 {percentile(timings, 99):.2f} ms"

    rows = []
    made_tenants = made_users = 0
    for tenants, users in ((100, 1_000), (1_000, 10_000)):
        bench.parallel(tenants - made_tenants, 4, lambda client, n: tenant(client, n + made_tenants))
        bench.parallel(users - made_users, 4, lambda client, n: user(client, n + made_users))
        made_tenants, made_users = tenants, users
        last = users // 50 - 1
        at = f"{users:,} users, {tenants:,} tenants"
        for name, path, headers, expect in (
            ("first page of 50 users", f"{users_path}?_limit=50&_offset=0", bench.vendor, 50),
            ("last page of 50 users", f"{users_path}?_limit=50&_offset={last}", bench.vendor, 50),
            ("a tenant's members (a page of 10)", f"{users_path}?_limit=50",
             dict(bench.vendor, **{"frontegg-tenant-id": "org-00042"}), 10),
            ("first page of 50 tenants (v2)", "/tenants/resources/tenants/v2?_limit=50",
             bench.vendor, 50),
            ("one user by id", f"/identity/resources/vendor-only/users/v1/user-{users - 1:06}",
             bench.vendor, 1),
        ):
            p50, p99 = timed(path, headers, expect)
            rows.append((f"{name}, {at}", p50, p99))
    return rows


def exchange_loop(port, credentials, until, pause, record):
    c = Client(port)
    while time.perf_counter() < until:
        status, _, took = c.call("POST", EXCHANGE, credentials)
        record.append((status, took))
        time.sleep(pause)


def jwks_loop(port, until, record):
    c = Client(port)
    while time.perf_counter() < until:
        status, _, took = c.call("GET", "/.well-known/jwks.json")
        record.append((status, took))
        time.sleep(0.02)


def flood_rows(bench, seconds, connections):
    port = bench.port
    tokens, _, _ = bench.create_tokens(1)
    credentials = tokens[0]

    idle = []
    exchange_loop(port, credentials, time.perf_counter() + 3, 0.1, idle)
    idle_ms = [took for status, took in idle if status == 200]

    # An unknown clientId and a wrong secret, alternating on the idle server: same answer,
    # and their medians should be alike.
    c = Client(port)
    refused = {"unknown clientId": [], "wrong secret": []}
    bodies = {}
    for n in range(400):
        kind = "wrong secret" if n % 2 == 0 else "unknown clientId"
        named = credentials["clientId"] if kind == "wrong secret" else str(uuid.uuid4())
        status, body, took = c.call("POST", EXCHANGE, {"clientId": named, "secret": well_formed_secret()})
        assert status == 401, (kind, status, body)
        bodies.setdefault(kind, body)
        refused[kind].append(took)
    assert bodies["wrong secret"] == bodies["unknown clientId"], bodies
    unknown_p50 = statistics.median(refused["unknown clientId"])
    wrong_p50 = statistics.median(refused["wrong secret"])

    wrong = [{"clientId": credentials["clientId"] if n % 2 == 0 else str(uuid.uuid4()),
              "secret": well_formed_secret()} for n in range(2000)]
    flood = {}
    flooding = threading.Thread(target=lambda: flood.update(
        bench.wrk(seconds, connections, "POST", EXCHANGE, wrong)))
    flooding.start()
    time.sleep(1)  # the flood is up before the legitimate client starts
    until = time.perf_counter() + seconds - 2
    exchanges, jwks = [], []
    clients = [
        threading.Thread(target=exchange_loop, args=(port, credentials, until, 0.15, exchanges)),
        threading.Thread(target=jwks_loop, args=(port, until, jwks)),
    ]
    for t in clients:
        t.start()
    for t in clients + [flooding]:
        t.join()

    ok = [took for status, took in exchanges if status == 200]
    jwks_ms = [took for status, took in jwks if status == 200]
    server_errors = sum(1 for s, _ in exchanges + jwks if s >= 500) + int(flood["s5xx"])
    idle_p50 = statistics.median(idle_ms)
    flood_p50 = percentile(ok, 50)
    success = 100.0 * len(ok) / max(1, len(exchanges))
    rows = [
        ("legitimate exchange, idle server: p50 (one bcrypt verify, then remembered)", f"{idle_p50:.1f} ms", ""),
        ("refused, idle server: unknown clientId / wrong secret p50",
         f"{unknown_p50:.2f} / {wrong_p50:.2f} ms",
         f"ratio {unknown_p50 / wrong_p50:.2f}, same 401 body (goal within 25%)"),
        ("legitimate exchange under the flood: p50 / p99",
         f"{flood_p50:.1f} / {percentile(ok, 99):.1f} ms", "goal p50 at most 4 x bcrypt"),
        ("legitimate exchanges that succeeded", f"{success:.1f}% of {len(exchanges)}", "goal at least 90%"),
        ("JWKS under the flood: p50 / p99",
         f"{percentile(jwks_ms, 50):.2f} / {percentile(jwks_ms, 99):.2f} ms", "goal p50 at most 20 ms"),
        ("flood: wrong secrets answered",
         f"{int(flood['requests']):,} in {flood['seconds']:.0f} s ({flood['rps']:,.0f}/s), p50 {flood['p50_ms']:.2f} ms",
         f"401: {int(flood['s4xx']):,}, 429: {int(flood['s429'])}, socket errors: {int(flood['errors'])}"),
        ("5xx answers (flood and legitimate)", str(server_errors), "goal 0"),
    ]
    return rows, flood_p50


def table(title, rows):
    print()
    print(f"| {title} | result | |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


def rss_mib(pid, field="VmHWM"):
    """The server's resident set (VmRSS) or its peak since start or the last reset (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid):
    """Starts VmHWM over from the current RSS (Linux: 5 to clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def main():
    port, pid, vendor_id, vendor_secret, workdir, seconds, connections, floors_line = sys.argv[1:9]
    port, seconds, connections = int(port), int(seconds), int(connections)
    floors = {k: float(v) for k, v in (kv.split("=") for kv in floors_line.split()[1:])}
    bench = Bench(port, vendor_id, vendor_secret, workdir)
    bench.pid = int(pid)

    table("floors (release, this machine)", [
        ("one bcrypt verify at the configured cost: median", f"{floors['bcrypt_ms']:.1f} ms",
         f"{(os.cpu_count() or 1) * 1000 / floors['bcrypt_ms']:.1f}/s on {os.cpu_count()} cores"),
        ("one RS256 signature with the local key: median", f"{floors['sign_ms']:.3f} ms",
         f"{(os.cpu_count() or 1) * 1000 / floors['sign_ms']:,.0f}/s on {os.cpu_count()} cores"),
    ])
    memory = []
    table("throughput", throughput_rows(bench, floors, memory))
    table("claims follow the token, not the directory", roles_rows(bench))
    table("directory pages follow the page, not the directory (embedded store)",
          directory_rows(bench))
    rows, flood_p50 = flood_rows(bench, seconds, connections)
    rows[2] = (rows[2][0], rows[2][1], f"{flood_p50 / floors['bcrypt_ms']:.2f} x bcrypt (goal at most 4)")
    table(f"{connections} connections of wrong secrets for {seconds} s", rows)
    memory.append(("server peak RSS after the exchanges (10,000 roles, the flood)",
                   f"{rss_mib(int(pid)):.1f} MiB", ""))
    table("memory", memory)


if __name__ == "__main__":
    main()

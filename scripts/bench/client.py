#!/usr/bin/env python3
"""The flood benchmark's driver (scripts/bench.sh starts the server and calls this).

Sets up a tenant token on the running local server, measures legitimate exchanges on the idle
server (their median is at least one bcrypt verify), then floods the exchange endpoint with
wrk (40 connections of well-formed wrong secrets: the known clientId with secrets that are not
its own, and unknown clientIds) while a legitimate client keeps exchanging and reading the
JWKS, and prints what it saw. Standard library only.
"""

import http.client
import json
import os
import random
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
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

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


def prepare(port, vendor_id, vendor_secret, workdir):
    c = Client(port)
    status, body, _ = c.call("POST", "/auth/vendor", {"clientId": vendor_id, "secret": vendor_secret})
    assert status == 200, (status, body)
    vendor = {"x-access-token": json.loads(body)["token"]}
    status, body, _ = c.call("PUT", "/identity/resources/tenants/v1/bench", {"name": "Bench"}, vendor)
    assert status == 200, (status, body)
    headers = dict(vendor, **{"frontegg-tenant-id": "bench"})
    status, body, _ = c.call("POST", "/identity/resources/tenants/api-tokens/v1", {}, headers)
    assert status == 201, (status, body)
    token = json.loads(body)
    with open(os.path.join(workdir, "bodies.jsonl"), "w") as out:
        for n in range(2000):
            client_id = token["clientId"] if n % 2 == 0 else str(uuid.uuid4())
            out.write(json.dumps({"clientId": client_id, "secret": well_formed_secret()}) + "\n")
    return token["clientId"], token["secret"]


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


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


def run(port, vendor_id, vendor_secret, workdir, seconds, connections):
    client_id, secret = prepare(port, vendor_id, vendor_secret, workdir)
    credentials = {"clientId": client_id, "secret": secret}

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
        named = client_id if kind == "wrong secret" else str(uuid.uuid4())
        status, body, took = c.call("POST", EXCHANGE, {"clientId": named, "secret": well_formed_secret()})
        assert status == 401, (kind, status, body)
        bodies.setdefault(kind, body)
        refused[kind].append(took)
    assert bodies["wrong secret"] == bodies["unknown clientId"], bodies
    unknown_p50 = statistics.median(refused["unknown clientId"])
    wrong_p50 = statistics.median(refused["wrong secret"])

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flood.lua")
    wrk = subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script,
         f"http://127.0.0.1:{port}", "--", os.path.join(workdir, "bodies.jsonl")],
        stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # the flood is up before the legitimate client starts
    until = time.perf_counter() + seconds - 2
    exchanges, jwks = [], []
    threads = [
        threading.Thread(target=exchange_loop, args=(port, credentials, until, 0.15, exchanges)),
        threading.Thread(target=jwks_loop, args=(port, until, jwks)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flood_out, _ = wrk.communicate()
    flood_line = next((l for l in flood_out.splitlines() if l.startswith("FLOOD ")), None)
    if flood_line is None:
        sys.exit("wrk printed no summary:\n" + flood_out)
    flood = dict(kv.split("=") for kv in flood_line.split()[1:])

    ok = [took for status, took in exchanges if status == 200]
    statuses = [status for status, _ in exchanges + jwks]
    jwks_ms = [took for status, took in jwks if status == 200]
    server_errors = sum(1 for s in statuses if s >= 500) + int(flood["s5xx"])
    idle_p50 = statistics.median(idle_ms)
    flood_p50 = percentile(ok, 50)
    success = 100.0 * len(ok) / max(1, len(exchanges))
    rows = [
        ("legitimate exchange, idle server: p50 (at least one bcrypt verify)", f"{idle_p50:.1f} ms", ""),
        ("refused, idle server: unknown clientId / wrong secret p50",
         f"{unknown_p50:.2f} / {wrong_p50:.2f} ms",
         f"ratio {unknown_p50 / wrong_p50:.2f}, same 401 body (goal within 25%)"),
        ("legitimate exchange under the flood: p50", f"{flood_p50:.1f} ms",
         f"{flood_p50 / idle_p50:.2f} x idle (goal <= 4)"),
        ("legitimate exchange under the flood: p99", f"{percentile(ok, 99):.1f} ms", ""),
        ("legitimate exchanges that succeeded", f"{success:.1f}% of {len(exchanges)}", "goal >= 90%"),
        ("JWKS under the flood: p50 / p99",
         f"{percentile(jwks_ms, 50):.2f} / {percentile(jwks_ms, 99):.2f} ms", "goal p50 <= 20 ms"),
        ("flood: wrong-secret requests answered",
         f"{int(flood['requests'])} in {float(flood['seconds']):.0f} s "
         f"({int(flood['requests']) / float(flood['seconds']):.0f}/s), p50 {float(flood['p50_ms']):.2f} ms",
         f"401: {flood['s4xx']}, 429: {flood['s429']}, socket errors: {flood['errors']}"),
        ("5xx answers (flood and legitimate)", str(server_errors), "goal 0"),
    ]
    print()
    print(f"| {connections} connections of wrong secrets for {seconds} s | result | |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")
    met = flood_p50 <= 4 * idle_p50 and success >= 90 and percentile(jwks_ms, 50) <= 20 and server_errors == 0
    print()
    print("goals met" if met else "GOALS NOT MET")


if __name__ == "__main__":
    port, vendor_id, vendor_secret, workdir, seconds, connections = sys.argv[1:7]
    random.seed()
    run(int(port), vendor_id, vendor_secret, workdir, int(seconds), int(connections))

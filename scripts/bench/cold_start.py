"""A Lambda function's cold start on this machine: the time from exec to its first poll of
the Runtime API (GET /2018-06-01/runtime/invocation/next), measured against a small stand-in
of the Runtime API on loopback, with the function's AWS calls at init (the SDK configuration,
KMS GetPublicKey) going to moto. A measurement, not a test.

    python cold_start.py BINARY MOTO_URL RUNS
"""

import http.server
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

import boto3


def resources(moto_url):
    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench",
                                    region_name="us-east-1")
    kms = session.client("kms", endpoint_url=moto_url)
    key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    dynamodb = session.client("dynamodb", endpoint_url=moto_url)
    table = f"bench-{os.getpid()}"
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}])
    return table, key


def main():
    binary, moto_url, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    table, key = resources(moto_url)
    polls = queue.Queue()

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            polls.put(time.perf_counter())
            # No invocation: the function is stopped before it could wait for one.

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": moto_url,
        "M2M_TABLE": table,
        "M2M_KMS_KEY_ID": key,
        "RUST_LOG": "warn",
    }
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            times.append((polls.get(timeout=30) - started) * 1000)
        finally:
            function.kill()
            function.wait()
    server.shutdown()
    times.sort()
    print(f"median={statistics.median(times):.1f} min={times[0]:.1f} max={times[-1]:.1f} runs={runs}")


if __name__ == "__main__":
    main()

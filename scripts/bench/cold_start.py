"""A Lambda function's cold start on this machine, against a small stand-in of the Runtime API
on loopback, the function's AWS calls going to moto: the time from exec to its first poll for
an invocation (GET /2018-06-01/runtime/invocation/next), and to its answer to that first
invocation (an exchange of a well-formed, unknown clientId and secret: 401 after one GetItem).
The function builds its app (SDK configuration, KMS GetPublicKey) beside the first poll.
A measurement, not a test.

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

from client import well_formed_secret

EVENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "events",
                     "exchange-v1.json")


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
    first_poll, answers = [], queue.Queue()
    delivered = threading.Event()  # one invocation per run
    with open(EVENT) as f:
        event = (f.read().replace("{{CLIENT_ID}}", "6f1c0b8e-3c1a-4d7e-9b8f-2a6d5e4c3b21")
                 .replace("{{SECRET}}", well_formed_secret())).encode()

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if delivered.is_set():
                time.sleep(5)  # the function is stopped meanwhile
                return
            if not first_poll:
                first_poll.append(time.perf_counter())
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                             "arn:aws:lambda:us-east-1:123456789012:function:bench")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(event)))
            self.end_headers()
            self.wfile.write(event)
            self.wfile.flush()
            delivered.set()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answers.put((time.perf_counter(), self.path, body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a connection the stopped function dropped; the next poll gets the event

    server = Server(("127.0.0.1", 0), RuntimeApi)
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
    polled, answered = [], []
    for _ in range(runs):
        delivered.clear()
        first_poll.clear()
        started = time.perf_counter()
        log = open(os.environ.get("COLD_START_LOG", os.devnull), "ab")
        function = subprocess.Popen([binary], env=env, stdout=log, stderr=log)
        try:
            at, path, body = answers.get(timeout=30)
            polled.append((first_poll[0] - started) * 1000)
            assert path.endswith("/bench-1/response") and b"401" in body, (path, body[:200])
            answered.append((at - started) * 1000)
        finally:
            function.kill()
            function.wait()
            log.close()
    server.shutdown()
    print(f"poll={statistics.median(polled):.1f} answer={statistics.median(answered):.1f} "
          f"poll_range={min(polled):.1f}-{max(polled):.1f} "
          f"answer_range={min(answered):.1f}-{max(answered):.1f} runs={runs}")


if __name__ == "__main__":
    main()

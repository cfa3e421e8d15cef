"""Measures a Lambda binary's cold start: from exec to its first poll of the Runtime API.

Usage: .venv/bin/python scripts/cold_start.py <binary> [runs]
Starts moto (DynamoDB + KMS) and a stub Runtime API on 127.0.0.1, runs the binary `runs`
times (default 20) as Lambda would, and prints the stripped size and the median start-up.
"""
import http.server
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    stripped = os.path.join(tempfile.mkdtemp(), "bootstrap")
    shutil.copy(binary, stripped)
    subprocess.run(["strip", stripped], check=True)
    moto_port = free_port()
    moto = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{moto_port}"
    aws = dict(region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t", endpoint_url=endpoint)
    for _ in range(100):
        try:
            key = boto3.client("kms", **aws).create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
            break
        except Exception:
            time.sleep(0.1)
    polled = threading.Event()

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            polled.set()
            time.sleep(0.5)  # hold the poll; the process is killed meanwhile

        def log_message(self, *args):
            pass

    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server_address[1]}",
               AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="t",
               AWS_SECRET_ACCESS_KEY="t", M2M_TABLE="m2m", M2M_KMS_KEY_ID=key["KeyMetadata"]["KeyId"],
               AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1769",
               AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_LOG_STREAM_NAME="s", AWS_LAMBDA_LOG_GROUP_NAME="g")
    times = []
    try:
        for _ in range(runs):
            polled.clear()
            started = time.perf_counter()
            process = subprocess.Popen([stripped], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not polled.wait(10):
                raise SystemExit("the binary never polled the Runtime API")
            times.append((time.perf_counter() - started) * 1000)
            process.kill()
            process.wait()
    finally:
        moto.kill()
        api.shutdown()
    size = os.path.getsize(stripped) / (1024 * 1024)
    print(f"{os.path.basename(binary)}: {size:.1f} MiB stripped; exec to first Runtime API poll: "
          f"median {statistics.median(times):.1f} ms over {runs} runs")


if __name__ == "__main__":
    main()

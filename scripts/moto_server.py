"""moto's server, applying each request whole before the next, as DynamoDB applies each
conditional write atomically.

moto's own server (`moto_server`) runs requests side by side, and its DynamoDB checks a
write's condition and then writes, with nothing in between held: two conditional writes of one
item can both pass their conditions, losing one of them. The suite proves that concurrent
changes are never lost, so it needs the guarantee the real service gives.

usage: moto_server.py HOST PORT
"""
import os
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # The whole answer is made inside the lock.
            return list(app(environ, start_response))

    # Threaded, so an idle keep-alive connection holds no one up; the lock orders the work.
    run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

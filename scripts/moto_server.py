"""moto's server, applying each request whole before the next, as DynamoDB applies each
conditional write atomically.

moto's own server (`moto_server`) runs requests side by side, and its DynamoDB checks a
write's condition and then writes, with nothing in between held: two conditional writes of one
item can both pass their conditions, losing one of them. The suite proves that concurrent
changes are never lost, so it needs the guarantee the real service gives.

moto's TransactWriteItems backs up the whole table once per item of the transaction (a deep
copy each): with a dozen items (a change and its audit event), a transaction on a table of
thousands of items costs seconds and gigabytes. Here it backs up each table once, as the
first copy would have been the same.

usage: moto_server.py HOST PORT
"""
import copy
import os
import sys
import threading
import types

import moto.dynamodb.models as dynamodb_models

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def back_up_each_table_once():
    backend = dynamodb_models.DynamoDBBackend
    transact = backend.transact_write_items

    def transact_write_items(self, transact_items):
        copies = {}

        def deepcopy(value, memo=None):
            if isinstance(value, dynamodb_models.Table):
                if id(value) not in copies:
                    copies[id(value)] = copy.deepcopy(value)
                return copies[id(value)]
            return copy.deepcopy(value, memo)

        # Requests run one at a time (below), so the module's `copy` may be swapped for one.
        dynamodb_models.copy = types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return transact(self, transact_items)
        finally:
            dynamodb_models.copy = copy

    backend.transact_write_items = transact_write_items


def main():
    back_up_each_table_once()
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

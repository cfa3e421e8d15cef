"""moto's server, applying each request whole before the next, as DynamoDB applies each
conditional write atomically.

moto's own server (`moto_server`) runs requests side by side, and its DynamoDB checks a
write's condition and then writes, with nothing in between held: two conditional writes of one
item can both pass their conditions, losing one of them. The suite proves that concurrent
changes are never lost, so it needs the guarantee the real service gives.

moto's TransactWriteItems backs up the whole table before it writes, once per item of the
transaction (a deep copy each), and puts the copy back if the transaction fails: with a
dozen items (a change and its audit event) on a table of thousands, seconds and gigabytes a
transaction. Here the items it touches are backed up instead, and put back if it fails: the
same outcome, as requests run one at a time.

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


def back_up_only_the_items_touched():
    backend = dynamodb_models.DynamoDBBackend
    transact = backend.transact_write_items

    def touched(self, transact_items):
        keys = []
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            name = op.get("TableName")
            if name not in self.tables:
                continue
            table = self.tables[name]
            if op_type == "Put":
                attrs = op.get("Item", {})
                key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs.get(table.range_key_attr)
            else:
                key = op.get("Key")
            if key and all(value is not None for value in key.values()):
                keys.append((name, key))
        return keys

    def transact_write_items(self, transact_items):
        saved = []
        for name, key in touched(self, transact_items):
            try:
                current = self.get_item(name, key)
            except Exception:  # a malformed key: moto's own checks answer it
                continue
            saved.append((name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        # moto's backup and rollback of whole tables become no-ops; the saved items stand in.
        dynamodb_models.copy = types.SimpleNamespace(deepcopy=lambda value, memo=None: value)
        try:
            return transact(self, transact_items)
        except Exception:
            for name, key, attributes in reversed(saved):
                if attributes is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, attributes)
            raise
        finally:
            dynamodb_models.copy = copy

    backend.transact_write_items = transact_write_items


def main():
    back_up_only_the_items_touched()
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

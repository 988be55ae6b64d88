#!/usr/bin/env python3
"""The smallest adapter (adapters/PROTOCOL.md): the protocol loop, with the runtime left out.

Fill in the four functions for your runtime; each raises until you do, and witness reports
every case as an adapter error naming what is missing. Run it with
`witness suite --engine 'process:python3 adapters/skeleton.py'`.
"""
import json
import sys


def compile_world(request):
    """Compile request["wasm"] (base64), with its imports as host functions that call back."""
    raise NotImplementedError("compile")


def instantiate():
    raise NotImplementedError("instantiate")


def call(interface, name, args, callback):
    """Call an export; `callback(message)` sends an import or dtor callback, returns the answer."""
    raise NotImplementedError("call")


def drop(handle):
    raise NotImplementedError("drop")


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def callback(message):
    send(message)
    return json.loads(sys.stdin.readline())


def main():
    send({"adapter": "skeleton", "version": "0", "protocol": 2, "features": []})
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        try:
            if op == "compile":
                compile_world(request)
                reply = {"ok": None}
            elif op == "instantiate":
                instantiate()
                reply = {"ok": None}
            elif op == "call":
                reply = {"ok": call(request["interface"], request["name"], request["args"], callback)}
            elif op == "drop":
                drop(request["handle"])
                reply = {"ok": None}
            else:
                reply = {"error": f"unknown request {op!r}"}
        except NotImplementedError as missing:
            reply = {"error": f"the skeleton does not implement `{missing}` yet"}
        # A final reply names its request's id; callbacks and their answers have none.
        send({**reply, "id": request.get("id")})


if __name__ == "__main__":
    main()

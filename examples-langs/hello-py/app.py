"""hello-py: the `hello` job in Python, built with componentize-py against wit/job.wit.

Input `{"name": "Ada"}` -> output `{"greeting": "Hello, Ada!"}`. It logs one line with fields
through the host, reports progress and prints a line to stdout (captured into the run's log).

With `"probe": true` in the input it also tries to read a file and to open a TCP connection
and returns what happened under `"probe"`: both are errors. The file: no directory is
preopened. The socket: this CPython build has no `socket` module (and wasi:sockets, linked
for its runtime, denies every use anyway).
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def run(self, ctx: types.Context, input: bytes) -> bytes:
        try:
            data = json.loads(input)
            name = data["name"]
        except (ValueError, KeyError, TypeError) as e:
            # Bad input will not get better on retry.
            raise Err(types.JobError_Fail(f'input must be {{"name": "..."}}: {e}'))

        host.log(
            types.Level.INFO,
            f"greeting {name}",
            [
                types.Field("name", name),
                types.Field("attempt", str(ctx.attempt)),
                types.Field("language", "python"),
            ],
        )
        print(f"hello-py says hello to {name}")
        host.progress(100, "greeted")

        output = {"greeting": f"Hello, {name}!"}
        if data.get("probe"):
            output["probe"] = {"file": try_file(), "socket": try_socket()}
        return json.dumps(output).encode()


def try_file() -> str:
    try:
        with open("/etc/hostname") as f:
            return "read " + str(len(f.read())) + " bytes"
    except Exception as e:  # noqa: BLE001 - the point is to report any failure
        return f"error: {type(e).__name__}: {e}"


def try_socket() -> str:
    try:
        import socket

        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return "connected"
    except Exception as e:  # noqa: BLE001
        return f"error: {type(e).__name__}: {e}"

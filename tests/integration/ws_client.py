#!/usr/bin/python3
# ws_client.py — an independent WebSocket client (Debian's python3-websockets, not
# eddy's code) for tests/integration/test_ws_live.c. Run with /usr/bin/python3.
#
#   ws_client.py PORT STORE EXPECT_COUNT
#   ws_client.py PORT --once SUBJECT [PARAMS_JSON]
#
# Checks that a foreign Origin is refused with 403, then subscribes to STORE and
# prints one JSON line per message received (the snapshot first, then updates),
# flushing each, until an update whose windows' "count" values sum to
# EXPECT_COUNT arrives (exit 0). Exit 1 on a timeout (20 s) or an error message.
# With --once it subscribes to SUBJECT (e.g. "view:requests_current") with the
# extra subscribe fields PARAMS_JSON, prints the first message and exits 0.
import asyncio
import json
import sys

import websockets


def total(msg):
    return sum(w.get("count", 0) for w in msg["data"]["windows"])


async def main(port, store, expect):
    uri = f"ws://127.0.0.1:{port}/ws"
    try:
        async with websockets.connect(uri, origin="http://evil.example.com"):
            print(json.dumps({"origin_check": "accepted"}), flush=True)
            return 1
    except websockets.exceptions.InvalidStatusCode as e:
        print(json.dumps({"origin_check": e.status_code}), flush=True)

    async with websockets.connect(uri, origin=f"http://127.0.0.1:{port}") as ws:
        await ws.send(json.dumps({"subscribe": store, "interval_ms": 100}))
        while True:
            msg = json.loads(await ws.recv())
            print(json.dumps(msg), flush=True)
            if msg["type"] == "error":
                return 1
            if msg["type"] == "update" and total(msg) == expect:
                # Our ping is answered (the library waits for the pong).
                await asyncio.wait_for(await ws.ping(), 5)
                return 0


async def once(port, subject, params):
    uri = f"ws://127.0.0.1:{port}/ws"
    async with websockets.connect(uri, origin=f"http://127.0.0.1:{port}") as ws:
        await ws.send(json.dumps(dict(params, subscribe=subject)))
        print(await ws.recv(), flush=True)
        return 0


if __name__ == "__main__":
    port = int(sys.argv[1])
    if sys.argv[2] == "--once":
        params = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
        job = once(port, sys.argv[3], params)
    else:
        job = main(port, sys.argv[2], int(sys.argv[3]))
    try:
        sys.exit(asyncio.run(asyncio.wait_for(job, 20)))
    except asyncio.TimeoutError:
        print(json.dumps({"timeout": True}), flush=True)
        sys.exit(1)

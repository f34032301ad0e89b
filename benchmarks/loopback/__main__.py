"""Run the loopback server in its own process (benchmarks measure the orchestrator's CPU, not the server's).

    python -m benchmarks.loopback [--delay 0.5] [--canned] [--port 0] [--log requests.jsonl]

Prints ``port N`` once listening, then serves until stdin closes or SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .canned import agent_reply
from .server import FakeOpenAIServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every normal reply")
    parser.add_argument("--canned", action="store_true", help="realistic agent replies (benchmarks.loopback.canned)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--log", help="append a JSON line per chat request (time, headers) to this file")
    args = parser.parse_args()
    server = FakeOpenAIServer(model=args.model, reply_delay_s=args.delay, record_requests=False, port=args.port,
                              responder=agent_reply if args.canned else None, fast_loop=True, request_log=args.log)
    server.start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print(f"port {server.port}", flush=True)
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()

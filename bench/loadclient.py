"""Concurrent HTTP clients for the local-site benchmark, in their own process (``python -m bench.loadclient``).

Running the clients apart keeps them from competing with the site for its interpreter lock. Each of
``--clients`` threads takes the next request number until ``--requests`` are done or ``--seconds`` pass, and
opens a fresh connection per request (the local site speaks HTTP/1.0, as its server closes after each answer).
Printed on stdout, one JSON document: per request its start and end on the system-wide monotonic clock
(the same clock as the parent's ``time.monotonic()``), its status, and for the stream-lag measure how many
requests had been answered (this one included) and how many others were still in flight when it ended.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def run(base_url: str, paths: list[str], clients: int, requests: int, seconds: float) -> list[dict[str, float]]:
    """Send ``requests`` GETs cycling over ``paths`` from ``clients`` threads; the per-request figures."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    prefix = parts.path.rstrip("/")
    lock = threading.Lock()
    state = {"next": 0, "answered": 0, "in_flight": 0}
    results: list[dict[str, float]] = []
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while True:
            with lock:
                index = state["next"]
                if index >= requests or time.monotonic() > deadline:
                    return
                state["next"] += 1
                state["in_flight"] += 1
            path = prefix + paths[index % len(paths)]
            started = time.monotonic()
            status = 0
            try:
                connection = http.client.HTTPConnection(host, port, timeout=30)
                connection.request("GET", path, headers={"User-Agent": "tag-counter-bench"})
                answer = connection.getresponse()
                answer.read()
                status = answer.status
                connection.close()
            except OSError:
                status = -1
            ended = time.monotonic()
            with lock:
                state["in_flight"] -= 1
                state["answered"] += 1
                results.append({
                    "start": started, "end": ended, "status": status,
                    "answered": state["answered"], "in_flight": state["in_flight"],
                })

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: base URL, paths, clients, requests, seconds; prints the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("--path", action="append", required=True, help="path under the base URL (repeatable)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    options = parser.parse_args(argv)
    figures = run(options.base_url, options.path, options.clients, options.requests, options.seconds)
    json.dump(figures, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The local site's TTL sweep over many expired visitor markers: how long reads wait while it runs.

``python -m bench.sweep [--tags 200000] [--markers 50000]`` starts the local site in this process on that many
tag items and expired visitor markers (put into moto as a restart puts saved items), reads a count page in a
loop from another thread (``LocalSite.respond``, the page as its function serves it, without HTTP), and runs
the sweep the housekeeping thread runs every 30 s (``LocalSite.expire_items``). It prints the sweep's length,
the slowest read while it ran and the slowest read in the second before it. As a ``./dev bench`` section
(``--skip sweep``): 200,000 tags and 50,000 markers, ``--quick`` 20,000 and 5,000.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import definition
from bench.section import NO_GOAL, Row, Section, status

FULL = (200_000, 50_000)
QUICK = (20_000, 5_000)
GOAL_MS = 50.0
"""No read should wait longer than this for a sweep."""
BEFORE_SECONDS = 1.0


@dataclass(frozen=True)
class Sweep:
    tags: int
    markers: int
    deleted: int
    sweep_ms: float
    max_read_ms: float
    """The slowest read that overlapped the sweep."""
    max_read_before_ms: float
    """The slowest read in the second before the sweep (the page's own time under this machine's load)."""
    reads: int

    @property
    def met(self) -> bool:
        return self.max_read_ms <= GOAL_MS


def _items(tags: int, markers: int, expired_at: int) -> list[dict[str, dict[str, str]]]:
    items = [{"pk": {"S": f"tag#sweep-{n}"}, "visits": {"N": str(n % 977 + 1)}, "last_day": {"N": "20261203"},
              "d20261203": {"N": "1"}} for n in range(tags)]
    items += [{"pk": {"S": f"visitor#{n:032x}"}, "expires_at": {"N": str(expired_at)}} for n in range(markers)]
    return items


def measure(tags: int, markers: int, stack: str = "dev") -> Sweep:
    """Start a site on ``tags`` tags and ``markers`` expired markers, read while one sweep deletes them."""
    from localsite.aws import load_items
    from localsite.site import LocalSite

    settings = definition.stack_settings(stack)
    with tempfile.TemporaryDirectory(prefix="tag-counter-sweep-") as state_dir:
        with LocalSite(settings=settings, port=0, state_dir=state_dir, fresh=True) as site:
            load_items(site.table_name, _items(tags, markers, int(site.clock()) - 60))
            reads: list[tuple[float, float]] = []
            stop = threading.Event()
            path, headers = f"/{settings.stage_name}/counts/sweep-1", [("Host", "127.0.0.1")]

            def read() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    site.respond("GET", path, headers)
                    reads.append((started, time.monotonic()))

            site.respond("GET", path, headers)  # the page's first read loads its function
            reader = threading.Thread(target=read, name="bench-sweep-reader", daemon=True)
            reader.start()
            time.sleep(BEFORE_SECONDS)
            began = time.monotonic()
            deleted = site.expire_items()
            ended = time.monotonic()
            time.sleep(0.1)
            stop.set()
            reader.join(10)
    during = [end - start for start, end in reads if end >= began and start <= ended]
    before = [end - start for start, end in reads if end < began]
    return Sweep(tags, markers, deleted, (ended - began) * 1000, max(during, default=0.0) * 1000,
                 max(before, default=0.0) * 1000, len(during))


def rows(result: Sweep) -> list[Row]:
    return [
        Row("TTL sweep: slowest read", f"{result.max_read_ms:.0f} ms ({result.max_read_before_ms:.0f} ms before)",
            f"<= {GOAL_MS:g} ms", status(result.met)),
        Row("TTL sweep: length", f"{result.sweep_ms:.0f} ms, {result.deleted:,} of {result.tags + result.markers:,}",
            NO_GOAL, NO_GOAL),
    ]


def markdown(result: Sweep) -> list[str]:
    return [
        "## The TTL sweep",
        "",
        f"The local site's TTL sweep (every 30 s, as DynamoDB's TTL process deletes expired items) over "
        f"{result.tags:,} tags and {result.markers:,} expired visitor markers took {result.sweep_ms:.0f} ms and "
        f"deleted {result.deleted:,} items; a count page read in a loop meanwhile ({result.reads} reads) waited "
        f"at most {result.max_read_ms:.0f} ms (goal: {GOAL_MS:g} ms), against {result.max_read_before_ms:.0f} ms "
        "in the second before (`bench/sweep.py`).",
        "",
    ]


SECTION = Section(
    name="sweep",
    measure=lambda run: measure(*(QUICK if run.quick else FULL), run.options.stack),
    rows=rows,
    markdown=markdown,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=FULL[0])
    parser.add_argument("--markers", type=int, default=FULL[1])
    parser.add_argument("--stack", default="dev")
    options = parser.parse_args(argv)
    result = measure(options.tags, options.markers, options.stack)
    from bench.report import render_table  # here: the report imports every section

    print(render_table(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

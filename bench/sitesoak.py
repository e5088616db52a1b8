"""The local site left running: throughput, p99 and memory while visits keep coming to new tags.

``python -m bench.sitesoak [--visits 30000] [--clients 8] [--chunk 1000]`` starts the local site in this
process exactly as ``./dev site`` runs it (fresh state in a temporary folder), sends the visits from
``bench.loadclient`` in another process, one chunk at a time, every visit to a tag never seen before (the worst
case for memory: the table and the saved state grow by one item per visit), and prints, per chunk, the visits
per second, the median and 99th percentile latency, and the site's resident memory after the chunk. The growth
of memory per thousand visits after the first chunks is the figure that tells a leak from a table that grows.

``--saving behind`` measures the site as it was before its saves were written through (a stream reader
saved the counts shortly after the answers), ``--synchronous NORMAL`` without an fsync of every commit: the
cost of durability, side by side on the same machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import definition
from bench.siteload import _load
from bench.stats import median, percentile


def resident_mb(pid: int | None = None) -> float:
    """A process's resident memory now, in MB (this one by default; Linux ``/proc``, else this one's peak)."""
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Chunk:
    """One chunk of visits and the memory after it."""

    visits: int
    """Visits sent so far, this chunk included."""
    errors: int
    per_second: float
    median_ms: float
    p99_ms: float
    resident_mb: float


@dataclass
class Soak:
    """Every chunk of one run, and the figures drawn from them."""

    clients: int
    saving: str = ""
    """How counts were saved: written through before each answer (the site) or behind the answers."""
    chunks: list[Chunk] = field(default_factory=list)
    start_mb: float = 0.0

    def growth_per_thousand(self, warm_up: int = 1) -> float:
        """Memory growth in MB per thousand visits, from the end of the warm-up chunks to the last chunk."""
        if len(self.chunks) <= warm_up:
            return float("nan")
        first, last = self.chunks[warm_up - 1] if warm_up else None, self.chunks[-1]
        base_visits, base_mb = (first.visits, first.resident_mb) if first else (0, self.start_mb)
        return (last.resident_mb - base_mb) * 1000 / (last.visits - base_visits)


def measure_soak(
    settings: definition.Settings,
    *,
    visits: int = 30_000,
    clients: int = 8,
    chunk: int = 1_000,
    write_through: bool = True,
    synchronous: str = "FULL",
    progress: Callable[[Chunk], None] | None = None,
) -> Soak:
    """Send ``visits`` visits to new tags in chunks of ``chunk``; the figures of each chunk."""
    from localsite import state
    from localsite.site import LocalSite  # imported here: it starts nothing until start()

    result = Soak(clients, saving=f"{'written through' if write_through else 'behind the answers'}, "
                                  f"synchronous={synchronous}")
    with tempfile.TemporaryDirectory(prefix="tag-counter-soak-") as state_dir, \
            _saving(state, write_through, synchronous):
        with LocalSite(settings=settings, port=0, state_dir=state_dir, fresh=True) as site:
            result.start_mb = resident_mb()
            sent = 0
            while sent < visits:
                size = min(chunk, visits - sent)
                paths = [f"/tags/soak-{sent + n}" for n in range(size)]
                figures = _load(site.url, paths, clients, size, 600.0)
                sent += size
                seconds = max(f["end"] for f in figures) - min(f["start"] for f in figures)
                latencies = [(f["end"] - f["start"]) * 1000 for f in figures]
                done = Chunk(
                    visits=sent,
                    errors=sum(1 for f in figures if f["status"] != 200),
                    per_second=len(figures) / seconds if seconds else 0.0,
                    median_ms=median(latencies),
                    p99_ms=percentile(latencies, 99),
                    resident_mb=resident_mb(),
                )
                result.chunks.append(done)
                if progress is not None:
                    progress(done)
    return result


@contextmanager
def _saving(state: Any, write_through: bool, synchronous: str) -> Iterator[None]:
    """Save as asked for the run's length: behind the answers is only a comparison, never how the site saves."""
    original_on_write, original_synchronous = state.StatePersister.on_write, state.SYNCHRONOUS
    if not write_through:
        state.StatePersister.on_write = lambda self, operation="": self._wake.set()
    state.SYNCHRONOUS = synchronous
    try:
        yield
    finally:
        state.StatePersister.on_write, state.SYNCHRONOUS = original_on_write, original_synchronous


def render(soak: Soak) -> str:
    """The figures as a text table."""
    lines = [f"local site soak, {soak.clients} clients, every visit to a new tag, counts saved {soak.saving}; "
             f"start {soak.start_mb:.0f} MB",
             f"{'visits':>8} {'errors':>6} {'visits/s':>9} {'median ms':>10} {'p99 ms':>8} {'memory MB':>10}"]
    for chunk in soak.chunks:
        lines.append(f"{chunk.visits:>8} {chunk.errors:>6} {chunk.per_second:>9.0f} {chunk.median_ms:>10.1f} "
                     f"{chunk.p99_ms:>8.1f} {chunk.resident_mb:>10.0f}")
    lines.append(f"memory growth after the first chunk: {soak.growth_per_thousand():.2f} MB per 1,000 visits")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the soak and print its figures."""
    parser = argparse.ArgumentParser(prog="./dev bench-soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--saving", choices=("through", "behind"), default="through",
                        help="through: as the site saves (before each answer); behind: as it saved before")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="FULL",
                        help="SQLite's synchronous setting for the state file (FULL, the site's: fsync every "
                             "commit; NORMAL: survives kills, not power cuts)")
    options = parser.parse_args(argv)
    started = time.monotonic()
    soak = measure_soak(
        definition.stack_settings(options.stack),
        visits=options.visits,
        clients=options.clients,
        chunk=options.chunk,
        write_through=options.saving == "through",
        synchronous=options.synchronous,
        progress=lambda c: print(f"  {c.visits} visits: {c.per_second:.0f}/s, p99 {c.p99_ms:.0f} ms, "
                                 f"{c.resident_mb:.0f} MB", file=sys.stderr, flush=True),
    )
    print(render(soak))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

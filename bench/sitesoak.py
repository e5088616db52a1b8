"""The local site left running: throughput, p99 and memory while visits keep coming to new tags.

``python -m bench.sitesoak [--visits 30000] [--clients 8] [--chunk 1000]`` starts the local site in this
process exactly as ``./dev site`` runs it (fresh state in a temporary folder), sends the visits from
``bench.loadclient`` in another process, one chunk at a time, every visit to a tag never seen before (the worst
case for memory: the table and the saved state grow by one item per visit), and prints, per chunk, the visits
per second, the median and 99th percentile latency, and the site's resident memory after the chunk. The growth
of memory per thousand visits after the first chunks is the figure that tells a leak from a table that grows.

``--saving behind`` measures the site as it was before its saves were written through (a stream reader
saved the counts shortly after the answers), ``--synchronous NORMAL`` without an fsync of every commit: the
cost of durability, side by side on the same machine. ``--json`` prints the figures as JSON instead.

As a ``./dev bench`` section (``SECTION``, ``--skip sitesoak``), each soak runs in a fresh interpreter (the site's
memory is then its own, not the benchmark's): 30,000 visits, then the three ways of saving side by side in
interleaved runs (``--quick``: a thousand visits, one run of each).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import definition
from bench.section import NO_GOAL, NOT_MET, Row, Section, status
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


VISITS_GOAL_PER_SECOND = 150
"""Visits to new tags a second the local site should serve on a 2-core machine (the slowest visit there is)."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of visits and the memory after it."""

    visits: int
    """Visits sent so far, this chunk included."""
    errors: int
    seconds: float
    """From the chunk's first request to its last answer."""
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
    median_ms: float = float("nan")
    """Latency over every visit of the run."""
    p99_ms: float = float("nan")

    @property
    def visits(self) -> int:
        """Visits sent in the whole run."""
        return self.chunks[-1].visits if self.chunks else 0

    @property
    def errors(self) -> int:
        """Visits not answered 200."""
        return sum(chunk.errors for chunk in self.chunks)

    @property
    def per_second(self) -> float:
        """Visits answered per second over the whole run (the time between chunks left out)."""
        seconds = sum(chunk.seconds for chunk in self.chunks)
        return self.visits / seconds if seconds else 0.0

    @property
    def end_mb(self) -> float:
        """The site's resident memory after the last chunk."""
        return self.chunks[-1].resident_mb if self.chunks else self.start_mb

    def to_json(self) -> str:
        """The figures as JSON (what ``--json`` prints and ``from_json`` reads)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Soak:
        """The figures ``to_json`` wrote."""
        data = json.loads(text)
        data["chunks"] = [Chunk(**chunk) for chunk in data["chunks"]]
        return cls(**data)

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
            every_latency: list[float] = []
            while sent < visits:
                size = min(chunk, visits - sent)
                paths = [f"/tags/soak-{sent + n}" for n in range(size)]
                figures = _load(site.url, paths, clients, size, 600.0)
                sent += size
                seconds = max(f["end"] for f in figures) - min(f["start"] for f in figures)
                latencies = [(f["end"] - f["start"]) * 1000 for f in figures]
                every_latency += latencies
                done = Chunk(
                    visits=sent,
                    errors=sum(1 for f in figures if f["status"] != 200),
                    seconds=seconds,
                    per_second=len(figures) / seconds if seconds else 0.0,
                    median_ms=median(latencies),
                    p99_ms=percentile(latencies, 99),
                    resident_mb=resident_mb(),
                )
                result.chunks.append(done)
                if progress is not None:
                    progress(done)
            result.median_ms, result.p99_ms = median(every_latency), percentile(every_latency, 99)
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


def growth_text(soak: Soak, warm_up: int = 1) -> str:
    """The memory growth as the output says it; with no chunk after the warm-up there is none to measure."""
    growth = soak.growth_per_thousand(warm_up)
    if math.isnan(growth):
        chunks = "no chunk" if not soak.chunks else ("one chunk only" if len(soak.chunks) == 1 else
                                                     f"{len(soak.chunks)} chunks only")
        return f"not measured: {chunks} (growth is read after the first; send more visits than --chunk)"
    return f"{growth:.2f} MB per 1,000 visits"


def render(soak: Soak) -> str:
    """The figures as a text table."""
    lines = [f"local site soak, {soak.clients} clients, every visit to a new tag, counts saved {soak.saving}; "
             f"start {soak.start_mb:.0f} MB",
             f"{'visits':>8} {'errors':>6} {'visits/s':>9} {'median ms':>10} {'p99 ms':>8} {'memory MB':>10}"]
    for chunk in soak.chunks:
        lines.append(f"{chunk.visits:>8} {chunk.errors:>6} {chunk.per_second:>9.0f} {chunk.median_ms:>10.1f} "
                     f"{chunk.p99_ms:>8.1f} {chunk.resident_mb:>10.0f}")
    lines.append(f"memory growth after the first chunk: {growth_text(soak)}")
    return "\n".join(lines)


# --- as a ./dev bench section ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakPlan:
    """How many visits a benchmark run sends: the soak, then each way of saving in interleaved runs."""

    visits: int
    chunk: int
    compare_visits: int
    compare_runs: int


FULL = SoakPlan(visits=30_000, chunk=1_000, compare_visits=3_000, compare_runs=3)
QUICK = SoakPlan(visits=1_000, chunk=250, compare_visits=250, compare_runs=1)

SAVINGS = (
    ("behind the answers, as before (a kill lost confirmed visits)", "behind", "FULL"),
    ("written through before each answer, `synchronous=NORMAL`", "through", "NORMAL"),
    ("written through and fsynced, `synchronous=FULL` (the site's)", "through", "FULL"),
)
"""The ways of saving compared: label, ``--saving``, ``--synchronous``; the site's own is last."""
TABLE_ROWS = 5
"""Chunks shown in the Markdown table (evenly spaced, the last always)."""


@dataclass(frozen=True)
class Saving:
    """One way of saving counts: the median of its runs."""

    label: str
    runs: int
    per_second: float
    p99_ms: float


@dataclass
class SoakFigures:
    """The section's result: the long soak, and the ways of saving side by side."""

    soak: Soak
    plan: SoakPlan
    savings: list[Saving] = field(default_factory=list)
    batching_window_seconds: int = 0


def run_soak(stack: str, *, visits: int, chunk: int, clients: int, saving: str = "through",
             synchronous: str = "FULL") -> Soak:
    """One soak in a fresh interpreter (``python -m bench.sitesoak --json``), so the memory is the site's own."""
    command = [sys.executable, "-m", "bench.sitesoak", "--json", "--stack", stack, "--visits", str(visits),
               "--chunk", str(chunk), "--clients", str(clients), "--saving", saving, "--synchronous", synchronous]
    # Its progress lines go to this run's stderr; a chunk may take up to 600 s (bench.siteload's limit).
    done = subprocess.run(command, cwd=definition.ROOT, stdout=subprocess.PIPE, text=True, check=False,
                          timeout=120 + 600 * -(-visits // chunk))
    if done.returncode != 0:
        raise RuntimeError(f"python -m bench.sitesoak exited {done.returncode} (its errors are above)")
    return Soak.from_json(done.stdout.strip().splitlines()[-1])


def measure_section(stack: str, plan: SoakPlan, clients: int) -> SoakFigures:
    """The soak at the plan's size, then each way of saving, their runs interleaved (the machine's load shifts)."""
    result = SoakFigures(run_soak(stack, visits=plan.visits, chunk=plan.chunk, clients=clients), plan,
                         batching_window_seconds=definition.stack_settings(stack).stream_batching_window_seconds)
    runs: dict[str, list[Soak]] = {label: [] for label, _, _ in SAVINGS}
    for _ in range(plan.compare_runs):
        for label, saving, synchronous in SAVINGS:
            runs[label].append(run_soak(stack, visits=plan.compare_visits, chunk=plan.compare_visits,
                                        clients=clients, saving=saving, synchronous=synchronous))
    result.savings = [Saving(label, len(soaks), median([s.per_second for s in soaks]),
                             median([s.p99_ms for s in soaks])) for label, soaks in runs.items()]
    return result


def summary_rows(result: SoakFigures) -> list[Row]:
    """Throughput, p99, memory after the visits and its growth (each row short: the summary fits 100 columns)."""
    soak = result.soak
    rows = [
        Row("site soak: throughput", f"{soak.per_second:.0f} req/s, {soak.visits:,} visits",
            f">= {VISITS_GOAL_PER_SECOND} req/s", status(soak.per_second >= VISITS_GOAL_PER_SECOND)),
        Row("site soak: p99", f"{soak.p99_ms:.1f} ms (median {soak.median_ms:.1f} ms)", NO_GOAL, NO_GOAL),
        Row("site soak: memory after", f"{soak.end_mb:.0f} MB ({soak.start_mb:.0f} MB at start)", NO_GOAL, NO_GOAL),
        Row("site soak: memory growth", growth_text(soak), NO_GOAL, NO_GOAL),
    ]
    if soak.errors:
        rows.append(Row("site soak: errors", f"{soak.errors:,} visits not answered 200", "none", NOT_MET))
    return rows


def _shown(chunks: Sequence[Chunk]) -> list[Chunk]:
    step = max(1, len(chunks) // TABLE_ROWS)
    shown = list(chunks[step - 1::step])
    if chunks and shown[-1] is not chunks[-1]:
        shown.append(chunks[-1])
    return shown


def markdown(result: SoakFigures) -> list[str]:
    """The soak's part of BENCHMARKS.md: memory and speed per chunk, then the cost of writing counts through."""
    from bench.report import markdown_table

    soak, plan = result.soak, result.plan
    out = [
        "## The local site left running",
        "",
        f"`bench/sitesoak.py`: the site in a fresh interpreter as `./dev site` runs it, {soak.clients} clients in "
        "another process, every visit to a tag never seen before (the table and the saved state grow by one item "
        f"per visit), the stack's {result.batching_window_seconds} s batching window. Throughput moves by ±20% "
        "with the machine's other load: compare figures of one run only.",
        "",
        f"Memory and speed over {soak.visits:,} visits, counts written through and fsynced (the site as it runs); "
        f"each row is the chunk of {plan.chunk:,} visits ending there:",
        "",
        markdown_table(["visits", "errors", "visits/s", "median ms", "p99 ms", "site's memory MB"],
                       [(f"{c.visits:,}", str(c.errors), f"{c.per_second:.0f}", f"{c.median_ms:.1f}",
                         f"{c.p99_ms:.1f}", f"{c.resident_mb:.0f}") for c in _shown(soak.chunks)]),
        "",
        f"{soak.start_mb:.0f} MB at start, {soak.end_mb:.0f} MB after {soak.visits:,} new tags; memory growth "
        f"after the first chunk: {growth_text(soak)}. Over all the visits: "
        f"{soak.per_second:.0f} visits/s, median {soak.median_ms:.1f} ms, p99 {soak.p99_ms:.1f} ms, "
        f"{soak.errors} errors.",
        "",
    ]
    if result.savings:
        runs = result.savings[0].runs
        how = "one run" if runs == 1 else f"{runs} interleaved runs, the median of the {runs}"
        out += [
            f"The cost of writing counts through: {plan.compare_visits:,} visits to new tags for each way of "
            f"saving ({how}):",
            "",
            markdown_table(["counts saved", "visits/s", "p99 ms"],
                           [(s.label, f"{s.per_second:.0f}", f"{s.p99_ms:.1f}") for s in result.savings]),
            "",
        ]
        behind, site = result.savings[0], result.savings[-1]
        if behind.per_second:
            change = site.per_second / behind.per_second - 1
            out += [f"Writing through and fsyncing against saving behind: {change:+.0%} visits per second, p99 "
                    f"{site.p99_ms:.1f} ms against {behind.p99_ms:.1f} ms.",
                    ""]
    return out


SECTION = Section(
    name="sitesoak",
    measure=lambda run: measure_section(run.options.stack, QUICK if run.quick else FULL,
                                        getattr(run.options, "clients", None) or 8),
    rows=summary_rows,
    markdown=markdown,
)
"""The local site left running as a ``./dev bench`` section (registered in ``bench.sections``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the soak and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.sitesoak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--saving", choices=("through", "behind"), default="through",
                        help="through: as the site saves (before each answer); behind: as it saved before")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="FULL",
                        help="SQLite's synchronous setting for the state file (FULL, the site's: fsync every "
                             "commit; NORMAL: survives kills, not power cuts)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (what ./dev bench reads)")
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
    if options.json:
        print(soak.to_json())
    else:
        print(render(soak))
        print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

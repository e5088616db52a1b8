"""``./dev admin import`` into the running local site: rows per second, and the CPU each row costs where.

``python -m bench.siteimport [--rows 20000]`` starts the local site in this process (fresh state in a temporary
folder, as ``./dev site`` runs it), writes a CSV of that many new tags and runs the operator command on it in
another process (``python -m admin import FILE --local --state-dir DIR --yes``, its default 16 workers), as an
operator would. It prints the rows per second over the command's whole run and the CPU time per row in the site
(moto's HTTP server, the writes, the stream mapping, the saved state) and in the command. As a ``./dev bench``
section (``--skip siteimport``): 20,000 rows, ``--quick`` 2,000.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import definition
from bench.section import Row, Section, status

FULL_ROWS = 20_000
QUICK_ROWS = 2_000
GOAL_ROWS_PER_SECOND = 1_000


@dataclass(frozen=True)
class Import:
    rows: int
    seconds: float
    site_cpu_ms: float
    """The site's CPU time per row (this process: the site alone runs in it meanwhile)."""
    command_cpu_ms: float
    """The operator command's CPU time per row."""

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def measure(rows: int, stack: str = "dev") -> Import:
    """Import ``rows`` new tags into a fresh local site with the operator command."""
    from localsite.site import LocalSite

    with tempfile.TemporaryDirectory(prefix="tag-counter-import-") as folder:
        source, state_dir = Path(folder) / "counts.csv", Path(folder) / "state"
        source.write_text("tag,visits\n" + "".join(f"import-{n},{n % 977 + 1}\n" for n in range(rows)),
                          encoding="utf-8")
        with LocalSite(settings=definition.stack_settings(stack), port=0, state_dir=state_dir, fresh=True) as site:
            children, cpu, started = os.times(), time.process_time(), time.monotonic()
            done = subprocess.run([sys.executable, "-m", "admin", "import", str(source), "--local", "--state-dir",
                                   str(state_dir), "--yes"], cwd=definition.ROOT, capture_output=True, text=True,
                                  check=False)
            seconds, site_cpu = time.monotonic() - started, time.process_time() - cpu
            after = os.times()
            site.drain(60)
        if done.returncode != 0:
            raise RuntimeError(f"admin import exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    command_cpu = (after.children_user - children.children_user) + (after.children_system - children.children_system)
    return Import(rows, seconds, site_cpu * 1000 / rows, command_cpu * 1000 / rows)


def rows(result: Import) -> list[Row]:
    return [
        Row("site import: rate", f"{result.per_second:.0f} rows/s, {result.rows:,} new tags",
            f">= {GOAL_ROWS_PER_SECOND:,} rows/s", status(result.per_second >= GOAL_ROWS_PER_SECOND)),
        Row("site import: CPU a row", f"site {result.site_cpu_ms:.2f} ms, command {result.command_cpu_ms:.2f} ms",
            "-", "-"),
    ]


def markdown(result: Import) -> list[str]:
    return [
        "## Importing into the local site",
        "",
        f"`./dev admin import` of {result.rows:,} new tags (CSV) into the running local site, its 16 workers "
        f"writing through moto's HTTP server: {result.per_second:.0f} rows/s (goal: {GOAL_ROWS_PER_SECOND:,}). "
        f"Each row cost {result.site_cpu_ms:.2f} ms of the site's CPU (moto's HTTP server and request handling, the "
        f"`UpdateItem`, its stream record through the stream mapping, the saved state) and "
        f"{result.command_cpu_ms:.2f} ms of the command's (botocore), on the same 2 cores (`bench/siteimport.py`).",
        "",
    ]


SECTION = Section(
    name="siteimport",
    measure=lambda run: measure(QUICK_ROWS if run.quick else FULL_ROWS, run.options.stack),
    rows=rows,
    markdown=markdown,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.siteimport", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--stack", default="dev")
    options = parser.parse_args(argv)
    result = measure(options.rows, options.stack)
    from bench.report import render_table  # here: the report imports every section

    print(render_table(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

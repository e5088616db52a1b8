"""The local site restarted on many saved tags: seconds from start to serving, and its memory then.

``python -m bench.siterestart [--tags 200000]`` saves that many tag items (each with a count, its last day and
one day of history, as a visited tag holds them) in a state folder through the site's own ``StateStore``, then
starts the local site on it in a fresh interpreter, exactly as ``./dev site`` starts, and prints how long
``start()`` took (the saved items put into moto, the total tallied from them) and the site's resident memory
once it serves. As a ``./dev bench`` section (``--skip siterestart``): 200,000 tags, ``--quick`` 20,000.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import definition
from bench.section import NO_GOAL, Row, Section, status
from bench.sitesoak import resident_mb

FULL_TAGS = 200_000
QUICK_TAGS = 20_000
GOAL_SECONDS = 5.0
"""At 200,000 tags (a quick run's 20,000 have no goal: the site's own start, about half a second, is most of it)."""


@dataclass(frozen=True)
class Restart:
    tags: int
    seconds: float
    resident_mb: float

    @property
    def met(self) -> bool | None:
        return self.seconds <= GOAL_SECONDS if self.tags >= FULL_TAGS else None


def save_tags(state_dir: Path, tags: int) -> None:
    """``tags`` tag items in the state folder, written as the site writes them (stream records' new images)."""
    from localsite.state import StateStore

    store = StateStore(state_dir, fresh=True)
    try:
        records = [{"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": f"tag#restart-{n}"}}, "NewImage": {
            "pk": {"S": f"tag#restart-{n}"}, "visits": {"N": str(n % 977 + 1)}, "last_day": {"N": "20261203"},
            "d20261203": {"N": "1"}}}} for n in range(tags)]
        store.apply(records)
    finally:
        store.close()


def start_once(state_dir: str, stack: str) -> Restart:
    """In this interpreter: start the site on the folder, measure, stop."""
    from localsite.site import LocalSite

    started = time.monotonic()
    site = LocalSite(settings=definition.stack_settings(stack), port=0, state_dir=state_dir)
    site.start()
    seconds = time.monotonic() - started
    try:
        return Restart(site.restored, seconds, resident_mb())
    finally:
        site.stop()


def measure(tags: int, stack: str = "dev") -> Restart:
    """Save ``tags`` items, then restart a site on them in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="tag-counter-restart-") as state_dir:
        save_tags(Path(state_dir), tags)
        answer = subprocess.run(
            [sys.executable, "-m", "bench.siterestart", "--start-only", state_dir, "--stack", stack],
            cwd=definition.ROOT, capture_output=True, text=True, check=True,
        )
    return Restart(**json.loads(answer.stdout.splitlines()[-1]))


def rows(result: Restart) -> list[Row]:
    return [
        Row("site restart: start", f"{result.seconds:.1f} s on {result.tags:,} saved tags",
            f"<= {GOAL_SECONDS:g} s" if result.met is not None else NO_GOAL, status(result.met)),
        Row("site restart: memory", f"{result.resident_mb:.0f} MB serving", NO_GOAL, NO_GOAL),
    ]


def markdown(result: Restart) -> list[str]:
    return [
        "## The local site restarted",
        "",
        f"`./dev site` started on a state folder of {result.tags:,} saved tags (each with a count, its last day "
        f"and one day of history) in {result.seconds:.1f} s (the goal: {GOAL_SECONDS:g} s at {FULL_TAGS:,}), "
        f"and then held {result.resident_mb:.0f} MB. The saved items go "
        "into moto's table as it held them (no request, no stream record) and the total is tallied from them.",
        "",
    ]


SECTION = Section(
    name="siterestart",
    measure=lambda run: measure(QUICK_TAGS if run.quick else FULL_TAGS, run.options.stack),
    rows=rows,
    markdown=markdown,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.siterestart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=FULL_TAGS)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--start-only", metavar="STATE_DIR", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.start_only:
        result = start_once(options.start_only, options.stack)
        print(json.dumps({"tags": result.tags, "seconds": result.seconds, "resident_mb": result.resident_mb}))
        return 0
    result = measure(options.tags, options.stack)
    from bench.report import render_table  # here: the report imports every section

    print(render_table(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

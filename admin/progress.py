"""Progress of a long run: a tqdm bar on a terminal, plain lines otherwise (logs, CI, a pipe).

tqdm is one pure-Python wheel with no dependencies of its own (0.6 MB installed); rich draws nicer bars but
brings Pygments and markdown-it with it (13 MB installed), for a bar an operator watches for seconds. Their import
times are alike (about 33 ms each, best of 10 runs here), and tqdm is imported only when there is a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class Progress:
    """Counts done items out of ``total``; call ``advance`` from one thread, ``close`` once at the end."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, interval: float = 5.0) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.interval = interval
        self._bar: Any = None
        self._last_line = time.monotonic()
        self._last_tenth = 0
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit=" tags", file=self.stream, dynamic_ncols=True)

    def advance(self, count: int = 1) -> None:
        """Record ``count`` more items done."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        tenth = self.done * 10 // max(self.total, 1)
        now = time.monotonic()
        if tenth > self._last_tenth or now - self._last_line >= self.interval:
            self._last_tenth, self._last_line = tenth, now
            if self.done < self.total:
                self._line()

    def _line(self) -> None:
        percent = 100 * self.done // max(self.total, 1)
        print(f"{self.label}: {self.done}/{self.total} ({percent}%)", file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar, or print the last line."""
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

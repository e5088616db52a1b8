"""Regenerate ``functions/badge_widths.json`` from the width tables of the npm package anafanafo (MIT).

anafanafo holds what shields.io's badge-maker measures text with: the advance width of every character in
Verdana at the sizes its badges use, measured in a browser. This keeps its Basic Multilingual Plane ranges
(every script a label is likely to use), merges neighbours of equal width, and writes them as two lists per
font (range starts, widths) that ``functions.badge`` searches with ``bisect``: JSON, because it loads in about
a millisecond whether or not the archive carries bytecode (the same table as Python source costs 20 ms to
compile). Characters it does not cover
(gaps, and everything past U+FFFF) are measured as the font's ``m``.

    npm pack anafanafo@2.0.0 && tar xzf anafanafo-2.0.0.tgz
    python tools/badge_widths.py package/data > functions/badge_widths.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FONTS = {
    # key in the JSON (read by functions.badge) -> anafanafo data file
    "verdana-11": "verdana-11px-normal.json",
    "verdana-10": "verdana-10px-normal.json",
    "verdana-10-bold": "verdana-10px-bold.json",
}
LAST = 0xFFFF
UNKNOWN = -1.0
"""Width written for a gap in the table: ``functions.badge`` measures it as an ``m``."""


def ranges(path: Path) -> tuple[list[int], list[float]]:
    """Range starts and widths, contiguous from the first character, gaps marked ``UNKNOWN``."""
    starts: list[int] = []
    widths: list[float] = []
    following = None
    for low, high, width in json.loads(path.read_text(encoding="utf-8")):
        if low > LAST:
            break
        if following is not None and low != following:
            starts.append(following)
            widths.append(UNKNOWN)
        if not widths or widths[-1] != width or low != following:
            starts.append(low)
            widths.append(float(width))
        following = min(high, LAST) + 1
    if following is not None and following <= LAST:
        starts.append(following)
        widths.append(UNKNOWN)
    return starts, widths


def main(data_dir: str) -> None:
    tables = {
        "source": "anafanafo 2.0.0 (MIT License, Copyright (c) Metabolize); Verdana is Microsoft Corp.'s",
        "unknown": UNKNOWN,
    }
    for name, file in FONTS.items():
        starts, widths = ranges(Path(data_dir) / file)
        tables[name] = {"starts": starts, "widths": widths}
    json.dump(tables, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])

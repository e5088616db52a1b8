"""Regenerate ``functions/badge_widths.json`` from the width tables of the npm package anafanafo (MIT).

anafanafo holds what shields.io's badge-maker measures text with: the advance width of every character in
Verdana at the sizes its badges use, measured in a browser. This keeps Verdana 11 px (the flat styles) over the
Basic Multilingual Plane (every script a label is likely to use), and bold Verdana 10 px (the big style's
message) over Latin-1; regular 10 px is 11 px scaled by 10/11 (anafanafo's tables agree to 0.2 %). It merges
neighbours of equal width and writes, per font, the gaps between range starts and each range's width in
hundredths of a pixel: small in the code archive (5 KB compressed), and JSON, because it loads in about a
millisecond whether or not the archive carries bytecode (the table as Python source costs 20 ms to compile).
Characters it does not cover (gaps, and everything past the last one kept) are measured as the font's ``m``.

    npm pack anafanafo@2.0.0 && tar xzf anafanafo-2.0.0.tgz
    python tools/badge_widths.py package/data > functions/badge_widths.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FONTS = {
    # key in the JSON (read by functions.badge) -> anafanafo data file, last character kept
    "verdana-11": ("verdana-11px-normal.json", 0xFFFF),
    # Only "for the badge" messages are bold: digits, capitals and a few signs the functions write themselves.
    "verdana-10-bold": ("verdana-10px-bold.json", 0xFF),
}
UNKNOWN = -1
"""Width written for a gap in the table: ``functions.badge`` measures it as an ``m``."""


def ranges(path: Path, last: int) -> tuple[list[int], list[float]]:
    """Range starts and widths, contiguous from the first character, gaps marked ``UNKNOWN``."""
    starts: list[int] = []
    widths: list[float] = []
    following = None
    for low, high, width in json.loads(path.read_text(encoding="utf-8")):
        if low > last:
            break
        if following is not None and low != following:
            starts.append(following)
            widths.append(UNKNOWN)
        if not widths or widths[-1] != width or low != following:
            starts.append(low)
            widths.append(float(width))
        following = min(high, last) + 1
    if following is not None and following <= last:
        starts.append(following)
        widths.append(UNKNOWN)
    return starts, widths


def main(data_dir: str) -> None:
    tables: dict[str, object] = {
        "source": "anafanafo 2.0.0 (MIT License, Copyright (c) Metabolize); Verdana is Microsoft Corp.'s",
        "format": "per font: gaps between range starts (the first from 0), each range's width in 1/100 px, "
        "-1 where unknown",
    }
    for name, (file, last) in FONTS.items():
        starts, widths = ranges(Path(data_dir) / file, last)
        deltas = [starts[0]] + [b - a for a, b in zip(starts, starts[1:])]
        tables[name] = {"deltas": deltas, "centipixels": [w if w < 0 else round(w * 100) for w in widths]}
    json.dump(tables, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])

"""The pluggable sections of ``./dev bench``, in the order they run and appear (see ``bench.section``).

Add a measurement with one module exposing ``SECTION`` and one line here.
"""

from __future__ import annotations

from bench import history, honest, packages, siteimport, siterestart, sitesoak, sweep
from bench.section import Section

SECTIONS: tuple[Section, ...] = (
    history.SECTION,
    honest.SECTION,
    packages.SECTION,
    sitesoak.SECTION,
    siterestart.SECTION,
    sweep.SECTION,
    siteimport.SECTION,
)

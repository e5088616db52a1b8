"""Sizes of what Lambda runs: the code archive and the Jinja2 layer, built by the stack's own packaging code."""

from __future__ import annotations

import importlib
import socket
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.section import NO_GOAL, NOT_MEASURED, BenchRun, Row, Section, status

ARCHIVE_GOAL_BYTES = 200 * 1024
"""The code archive's budget: its sources and, beside them, their Python 3.13 bytecode. It was 100 KB before the
bytecode shipped and was never met after: the bytecode is about 90 KB of a 147 KB archive, and it is what spares
every cold start compiling the functions' modules (BENCHMARKS.md, the bytecode variant). Restated at 200 KB, it
guards against growth of the shipped code."""
PYPI_HOST = "pypi.org"


@dataclass
class PackageSize:
    """One zip: its size, what it unpacks to, and why it could not be built if it could not."""

    name: str
    zipped_bytes: int | None
    unpacked_bytes: int | None = None
    files: int | None = None
    goal_bytes: int | None = None
    problem: str | None = None

    @property
    def met(self) -> bool | None:
        """Whether the zip is under its goal (None: no goal, or not measured)."""
        if self.goal_bytes is None or self.zipped_bytes is None:
            return None
        return self.zipped_bytes < self.goal_bytes


def describe_zip(name: str, path: Path, goal_bytes: int | None = None) -> PackageSize:
    """Size, unpacked size and file count of a zip on disk."""
    with zipfile.ZipFile(path) as archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        unpacked = sum(info.file_size for info in entries)
    return PackageSize(name, path.stat().st_size, unpacked, len(entries), goal_bytes)


def pypi_reachable(timeout: float = 5.0) -> str | None:
    """None when PyPI answers on port 443; otherwise why not, in a few words."""
    try:
        with socket.create_connection((PYPI_HOST, 443), timeout=timeout):
            return None
    except OSError as error:
        return f"{PYPI_HOST} cannot be reached ({error.__class__.__name__}: {error})"


def measure_packages(*, layer: bool = True, layer_cache: Path | None = None) -> list[PackageSize]:
    """The code archive's size against its goal, and the Jinja2 layer's (needs PyPI the first time)."""
    try:
        packaging = importlib.import_module("components.packaging")
    except ImportError as error:
        problem = f"components.packaging is not available ({error})"
        return [PackageSize("code archive", None, goal_bytes=ARCHIVE_GOAL_BYTES, problem=problem),
                PackageSize("Jinja2 layer", None, problem=problem)]
    results = []
    with tempfile.TemporaryDirectory(prefix="tag-counter-archive-") as scratch:
        archive = packaging.build_code_archive(Path(scratch))
        results.append(describe_zip("code archive", archive, ARCHIVE_GOAL_BYTES))
    if not layer:
        results.append(PackageSize("Jinja2 layer", None, problem="not measured (--skip-layer)"))
        return results
    cache = Path(layer_cache) if layer_cache else packaging.BUILD_DIR / "layer"
    cached = cache / f"jinja2-layer-{packaging.layer_cache_key()}.zip"
    unreachable = None if cached.exists() else pypi_reachable()
    if unreachable:
        results.append(PackageSize("Jinja2 layer", None, problem=f"not measured: building it needs PyPI, and {unreachable}"))
        return results
    try:
        built = packaging.build_layer(cache)
    except packaging.LayerBuildError as error:
        first_line = str(error).splitlines()[0]
        results.append(PackageSize("Jinja2 layer", None, problem=f"not measured: {first_line}"))
        return results
    results.append(describe_zip("Jinja2 layer (python3.13 arm64)", built))
    return results


def _kb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} KB"


def _goal(package: PackageSize) -> str:
    return f"< {package.goal_bytes // 1024} KB" if package.goal_bytes else NO_GOAL


def summary_rows(packages: Sequence[PackageSize]) -> list[Row]:
    """One summary row per package."""
    rows = []
    for package in packages:
        figure = f"size: {package.name.split(' (')[0]}"
        if package.zipped_bytes is None:
            rows.append(Row(figure, (package.problem or NOT_MEASURED)[:38], _goal(package), NOT_MEASURED))
        else:
            rows.append(Row(figure, f"{_kb(package.zipped_bytes)} ({_kb(package.unpacked_bytes)} unpacked)",
                            _goal(package), status(package.met)))
    return rows


def markdown(packages: Sequence[PackageSize]) -> list[str]:
    """The package sizes' part of BENCHMARKS.md."""
    from bench.report import markdown_table

    rows = [(p.name, _kb(p.zipped_bytes), _kb(p.unpacked_bytes), str(p.files if p.files is not None else "-"),
             _goal(p), p.problem or status(p.met)) for p in packages]
    return [
        "## Package sizes",
        "",
        "Built by `components.packaging`, as `pulumi up` builds them (the layer for python3.13 on arm64 "
        "with pip, from PyPI, cached under `build/layer/`).",
        "",
        markdown_table(["package", "zipped", "unpacked", "files", "goal", "status"], rows),
        "",
    ]


SECTION = Section(
    name="packages",
    measure=lambda run: measure_packages(layer=not getattr(run.options, "skip_layer", False)),
    rows=summary_rows,
    markdown=markdown,
)
"""Package sizes as a ``./dev bench`` section (registered in ``bench.sections``)."""

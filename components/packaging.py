"""Build what Lambda runs: the code archive and the Jinja2 layer, byte for byte reproducible.

Pulumi compares archives by content: an archive whose bytes change although its sources did not shows a
spurious diff on every ``pulumi up``. Both zips are therefore written with sorted entries, a fixed timestamp
(1980-01-01, the earliest a zip can hold), fixed permissions and no ``__pycache__``.

The layer is built with pip for Lambda's platform (``manylinux2014_aarch64``, CPython 3.13, wheels only), never
copied from this machine's site-packages. Its build is cached under ``build/layer/`` by a key over the pinned
requirements and the target, so repeated previews reuse the zip and do no work.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pulumi

import definition

BUILD_DIR = definition.ROOT / "build"
"""Where archives and the layer cache live (gitignored)."""

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--
LAYER_IMPLEMENTATION = "cp"
_SKIPPED_DIRECTORIES = frozenset({"__pycache__"})


@dataclass(frozen=True)
class BuiltArchive:
    """A zip on disk and the base64 SHA-256 of its bytes (what ``source_code_hash`` wants)."""

    path: Path
    sha256_base64: str

    @classmethod
    def of(cls, path: Path) -> BuiltArchive:
        """Describe an existing zip."""
        return cls(path=path, sha256_base64=file_sha256_base64(path))

    def file_archive(self) -> pulumi.FileArchive:
        """The zip as a Pulumi archive, addressed relative to the project when it lies inside it.

        Pulumi runs the program from the project directory; a relative path keeps the state free of
        one machine's checkout location.
        """
        path = Path(self.path).resolve()
        try:
            return pulumi.FileArchive(path.relative_to(Path.cwd().resolve()).as_posix())
        except ValueError:
            return pulumi.FileArchive(str(path))


def file_sha256_base64(path: Path) -> str:
    """Base64 of the SHA-256 of a file's bytes, as Lambda reports ``CodeSha256``."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode("ascii")


def _tree_files(base: Path, suffixes: tuple[str, ...] | None) -> Iterable[Path]:
    for directory, subdirectories, files in os.walk(base):
        # Pruning in place keeps os.walk out of bytecode caches.
        subdirectories[:] = [d for d in subdirectories if d not in _SKIPPED_DIRECTORIES]
        for file_name in files:
            path = Path(directory) / file_name
            if suffixes is None or path.suffix in suffixes:
                yield path


def code_files(root: Path = definition.ROOT) -> list[tuple[str, Path]]:
    """``(name in archive, file)`` for every file the code archive holds, sorted by name."""
    entries: list[tuple[str, Path]] = []
    for directory in definition.CODE_DIRECTORIES:
        base = root / directory
        if not base.is_dir():
            raise FileNotFoundError(f"code directory {base} is missing")
        for path in _tree_files(base, definition.CODE_SUFFIXES):
            entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def write_deterministic_zip(entries: Iterable[tuple[str, Path]], destination: Path) -> Path:
    """Write ``entries`` into ``destination``: same names and contents give the same bytes.

    The file is replaced atomically and only when its bytes change, so a concurrent reader never
    sees half a zip and an unchanged archive keeps its modification time.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=destination.parent, prefix=".tmp-", suffix=".zip")
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            for name, path in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                info.create_system = 3  # Unix, so external_attr is read as a mode everywhere
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)
        if destination.exists() and destination.read_bytes() == temporary.read_bytes():
            temporary.unlink()
        else:
            temporary.chmod(0o644)  # mkstemp creates 0600; the zip is no secret
            temporary.replace(destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return destination


def build_code_archive(dest_dir: Path = BUILD_DIR / "code", root: Path = definition.ROOT) -> Path:
    """Zip ``functions/`` and ``templates/`` (``.py`` and template files only) into ``dest_dir/code.zip``."""
    return write_deterministic_zip(code_files(root), Path(dest_dir) / "code.zip")


def layer_cache_key(requirements: Path = definition.LAYER_REQUIREMENTS) -> str:
    """What the layer's content depends on: the pinned requirements and the target platform and Python."""
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    for part in (definition.LAYER_PLATFORM, definition.LAYER_PYTHON_VERSION, LAYER_IMPLEMENTATION):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:20]


def pip_install_command(target: Path, requirements: Path = definition.LAYER_REQUIREMENTS) -> list[str]:
    """The pip call that installs the pinned wheels for Lambda's platform into ``target``."""
    return [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        "--target", str(target),
        "--platform", definition.LAYER_PLATFORM,
        "--python-version", definition.LAYER_PYTHON_VERSION,
        "--implementation", LAYER_IMPLEMENTATION,
        "--only-binary=:all:",
        # Bytecode compiled here would be for this interpreter, not Lambda's.
        "--no-compile",
        "-r", str(requirements),
    ]  # fmt: skip


class LayerBuildError(RuntimeError):
    """pip could not build the layer (offline, or a pin without a wheel for the target)."""


def build_layer(cache_dir: Path = BUILD_DIR / "layer", requirements: Path = definition.LAYER_REQUIREMENTS) -> Path:
    """Return the layer zip (``python/`` + the pinned packages), building it only if the cache lacks it."""
    cache_dir = Path(cache_dir)
    key = layer_cache_key(requirements)
    archive = cache_dir / f"jinja2-layer-{key}.zip"
    if archive.exists():
        return archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as workspace:
        tree = Path(workspace)
        result = subprocess.run(
            pip_install_command(tree / "python", requirements),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LayerBuildError(
                f"pip could not build the Jinja2 layer for {definition.LAYER_PLATFORM} "
                f"python{definition.LAYER_PYTHON_VERSION} (exit {result.returncode}):\n{result.stderr.strip()}"
            )
        entries = [(path.relative_to(tree).as_posix(), path) for path in _tree_files(tree / "python", None)]
        write_deterministic_zip(entries, archive)
    return archive

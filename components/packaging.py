"""Build what Lambda runs: the code archive and the Jinja2 layer, byte for byte the same on every machine.

Pulumi compares archives by content: an archive whose bytes change although its sources did not shows a
spurious diff on every ``pulumi up``, and a layer whose bytes depend on the machine publishes a new layer version
whenever another operator (or CI) deploys. Both zips are therefore written with sorted entries, a fixed timestamp
(1980-01-01, the earliest a zip can hold), fixed permissions and no ``__pycache__`` from this machine.

The layer is built with pip for Lambda's platform (``manylinux2014_aarch64``, CPython 3.13, wheels only), never
copied from this machine's site-packages. Its build is cached under ``build/layer/`` by a key over the pinned
requirements, the target and the bytecode compiler, so repeated previews reuse the zip and do no work.

Bytecode: Lambda's ``/var/task`` and ``/opt`` are read-only, so a module shipped without its ``.pyc`` is compiled
again at every cold start (for Jinja2, most of its import time). Both zips carry ``__pycache__/*.cpython-313.pyc``
beside the sources, hash-based and unchecked (no timestamps inside; Lambda never re-checks them against sources
that cannot change), naming their sources as Lambda sees them (``/var/task/...``, ``/opt/python/...``).
Bytecode is not portable between CPython releases, not even patch releases: Jinja2 compiled by 3.13.0 and by 3.13.2
differs in 11 modules. So it is never compiled by whatever Python this machine has: always by one pinned CPython
3.13, Pyodide's WebAssembly build from the npm registry (``components/bytecode/``: ``package.json`` pins it,
``package-lock.json`` pins its bytes by hash), run by Node.js. WebAssembly runs the same everywhere, so every
machine with Node.js 18+ compiles the same bytes, with or without a Python 3.13 of its own; one without Node.js
gets a clear error rather than a different archive. Pyodide is installed once under ``build/bytecode/`` (``npm
ci``, about 13 MB), and compiled code archives are cached under ``build/code-cache/`` by their content.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
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
LAYER_LAYOUT = "packages-only"
"""How the layer's tree is shaped after pip (``drop_console_scripts``), part of its cache key: a layer cached before
the shape changed is built again, not reused."""
_SKIPPED_DIRECTORIES = frozenset({"__pycache__"})

TARGET_CACHE_TAG = "cpython-" + definition.LAYER_PYTHON_VERSION.replace(".", "")
"""``sys.implementation.cache_tag`` of Lambda's Python: the ``.pyc`` name part (``cpython-313``) it loads."""
TASK_ROOT = "/var/task"
"""Where Lambda unpacks the code archive: the directory the archive's bytecode names as its source."""
LAYER_ROOT = "/opt"
"""Where Lambda unpacks layers (the layer's ``python/`` becomes ``/opt/python``)."""

COMPILER_SOURCE = Path(__file__).resolve().parent / "bytecode"
"""The pinned bytecode compiler: ``package.json``, ``package-lock.json`` and the ``compile.mjs`` that runs it."""
COMPILER_FILES = ("package.json", "package-lock.json", "compile.mjs")
PYODIDE_VERSION: str = json.loads((COMPILER_SOURCE / "package.json").read_text(encoding="utf-8"))["dependencies"][
    "pyodide"
]
COMPILER_DESCRIPTION = (
    f"CPython {definition.LAYER_PYTHON_VERSION} of Pyodide {PYODIDE_VERSION} (WebAssembly, run by Node.js), "
    "the same on every machine"
)
"""What compiles the shipped bytecode, in words (the benchmarks print it)."""
MIN_NODE_MAJOR = 18
COMPILER_CACHE = BUILD_DIR / "bytecode"
"""Where the compiler is installed (once per pinned version)."""


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


def _tree_files(base: Path, suffixes: tuple[str, ...] | None, *, bytecode: bool = False) -> Iterable[Path]:
    for directory, subdirectories, files in os.walk(base):
        # Pruning in place keeps os.walk out of bytecode caches, unless this build wrote them itself.
        if not bytecode:
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
        _replace_if_changed(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return destination


def _replace_if_changed(temporary: Path, destination: Path) -> None:
    if destination.exists() and destination.read_bytes() == temporary.read_bytes():
        temporary.unlink()
    else:
        temporary.chmod(0o644)  # mkstemp creates 0600; the zip is no secret
        temporary.replace(destination)


def _copy_if_changed(source: Path, destination: Path) -> Path:
    """Copy ``source`` to ``destination`` atomically, leaving an identical ``destination`` untouched."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=destination.parent, prefix=".tmp-", suffix=".zip")
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        temporary.write_bytes(source.read_bytes())
        _replace_if_changed(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return destination


class BytecodeError(RuntimeError):
    """The bytecode could not be compiled: no Node.js, the compiler could not be installed, or a source is not valid
    Python 3.13."""


def _run(command: list[str], failure: RuntimeError, cwd: Path | None = None) -> None:
    """Run a build step; if it fails, raise ``failure`` with the exit code and what the step printed."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise type(failure)(f"{failure} (exit {result.returncode}):\n{output}")


def compiler_key() -> str:
    """What the compiled bytes depend on besides the sources: the pinned compiler's files."""
    digest = hashlib.sha256()
    for name in COMPILER_FILES:
        digest.update(name.encode() + b"\0" + (COMPILER_SOURCE / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _tool(name: str, search_path: str | None = None) -> str:
    found = shutil.which(name, path=search_path)
    if found is None:
        raise BytecodeError(
            f"{name} is not on PATH: the bytecode for Lambda's Python {definition.LAYER_PYTHON_VERSION} is compiled "
            f"by a pinned CPython {definition.LAYER_PYTHON_VERSION} that runs on Node.js "
            f"{MIN_NODE_MAJOR} or newer (with npm); install Node.js, then run the command again"
        )
    return found


def check_node(node: str) -> None:
    """Refuse a Node.js older than the compiler needs, saying which one was found."""
    result = subprocess.run([node, "--version"], capture_output=True, text=True, check=False, timeout=60)
    version = result.stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        major = 0
    if result.returncode != 0 or major < MIN_NODE_MAJOR:
        raise BytecodeError(
            f"{node} ({version or 'does not run'}) cannot run the bytecode compiler: it needs Node.js "
            f"{MIN_NODE_MAJOR} or newer"
        )


def install_compiler(cache_dir: Path | None = None, search_path: str | None = None) -> Path:
    """The directory holding the pinned compiler, installed there with ``npm ci`` the first time.

    ``npm ci`` installs exactly ``package-lock.json``, checking each package against the hash it records.
    """
    cache_dir = Path(cache_dir or COMPILER_CACHE)
    target = cache_dir / f"pyodide-{PYODIDE_VERSION}-{compiler_key()}"
    if (target / "node_modules" / "pyodide" / "package.json").is_file():
        return target
    npm = _tool("npm", search_path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".install-"))
    try:
        for name in COMPILER_FILES:
            shutil.copyfile(COMPILER_SOURCE / name, workspace / name)
        _run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            BytecodeError(f"npm could not install the bytecode compiler (Pyodide {PYODIDE_VERSION}) from its registry"),
            cwd=workspace,
        )
        try:
            workspace.rename(target)
        except OSError:
            if not target.is_dir():  # not another build that finished first
                raise
    finally:
        if workspace.exists():
            shutil.rmtree(workspace)
    return target


def compile_command(node: str, compiler: Path, tree: Path, lambda_dir: str) -> list[str]:
    """The call that writes ``tree``'s bytecode as Lambda will find it under ``lambda_dir``."""
    return [node, str(compiler / "compile.mjs"), str(tree), lambda_dir]


def compile_tree(tree: Path, lambda_dir: str, cache_dir: Path | None = None, search_path: str | None = None) -> None:
    """Write ``__pycache__/*.cpython-313.pyc`` beside every ``.py`` under ``tree``; ``BytecodeError`` if that fails.

    ``search_path`` (default ``PATH``) is where Node.js and npm are looked for; no Python on it is ever used.
    """
    node = _tool("node", search_path)
    check_node(node)
    compiler = install_compiler(cache_dir, search_path)
    _run(
        compile_command(node, compiler, tree, lambda_dir),
        BytecodeError(f"the sources could not be compiled for Lambda's Python {definition.LAYER_PYTHON_VERSION}"),
        cwd=compiler,
    )


def code_cache_key(entries: Iterable[tuple[str, Path]]) -> str:
    """What a compiled code archive depends on: every entry's name and bytes, and the compiler."""
    digest = hashlib.sha256(compiler_key().encode())
    for name, path in sorted(entries):
        digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def build_code_archive(
    dest_dir: Path = BUILD_DIR / "code",
    root: Path = definition.ROOT,
    cache_dir: Path = BUILD_DIR / "code-cache",
) -> Path:
    """Zip ``functions/`` and ``templates/`` (``.py`` and template files only), with the functions' bytecode for
    Lambda's Python beside their sources, into ``dest_dir/code.zip``.

    The compiled zip is cached in ``cache_dir`` by its content (``code_cache_key``), so an unchanged tree is not
    compiled again.
    """
    entries = code_files(root)
    destination = Path(dest_dir) / "code.zip"
    cached = Path(cache_dir) / f"code-{code_cache_key(entries)}.zip"
    if not cached.is_file():
        with tempfile.TemporaryDirectory(prefix=".code-") as workspace:
            tree = Path(workspace)
            for name, path in entries:
                copy = tree / name
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(path.read_bytes())
            compile_tree(tree, TASK_ROOT)
            compiled = [(path.relative_to(tree).as_posix(), path) for path in _tree_files(tree, None, bytecode=True)]
            write_deterministic_zip(compiled, cached)
    return _copy_if_changed(cached, destination)


def layer_cache_key(requirements: Path = definition.LAYER_REQUIREMENTS) -> str:
    """What the layer's content depends on: the pinned requirements, the target platform and Python, and the
    bytecode compiler."""
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    parts = (
        definition.LAYER_PLATFORM,
        definition.LAYER_PYTHON_VERSION,
        LAYER_IMPLEMENTATION,
        LAYER_LAYOUT,
        compiler_key(),
    )
    for part in parts:
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


def drop_console_scripts(site: Path) -> None:
    """Remove what ``pip install --target`` writes outside the packages: the console scripts in ``site/bin`` and
    their lines in each ``RECORD``.

    A script's shebang names the Python that ran pip (a path on the building machine), and its ``RECORD`` line that
    script's hash: both differ from machine to machine, and nothing in Lambda runs them. Every other ``RECORD`` line
    names a file inside ``site``, relative to it.
    """
    shutil.rmtree(site / "bin", ignore_errors=True)
    for record in sorted(site.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("../")]
        if kept != lines:
            record.write_text("".join(kept), encoding="utf-8")


class LayerBuildError(RuntimeError):
    """pip could not build the layer (offline, or a pin without a wheel for the target)."""


def build_layer(cache_dir: Path = BUILD_DIR / "layer", requirements: Path = definition.LAYER_REQUIREMENTS) -> Path:
    """Return the layer zip (``python/`` + the pinned packages and their bytecode), building it only if the cache
    lacks it."""
    cache_dir = Path(cache_dir)
    archive = cache_dir / f"jinja2-layer-{layer_cache_key(requirements)}.zip"
    if archive.exists():
        return archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as workspace:
        tree = Path(workspace)
        _run(
            pip_install_command(tree / "python", requirements),
            LayerBuildError(
                f"pip could not build the Jinja2 layer for {definition.LAYER_PLATFORM} "
                f"python{definition.LAYER_PYTHON_VERSION}"
            ),
        )
        drop_console_scripts(tree / "python")
        compile_tree(tree, LAYER_ROOT)
        files = _tree_files(tree / "python", None, bytecode=True)
        entries = [(path.relative_to(tree).as_posix(), path) for path in files]
        write_deterministic_zip(entries, archive)
    return archive

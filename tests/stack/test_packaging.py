"""The code archive and the Jinja2 layer: exact contents, Python 3.13 bytecode beside the sources, identical bytes
on every build and every machine (with or without a Python 3.13 of its own), cached builds."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import definition
from components import packaging

PLANTED = {
    "functions/__init__.py": "",
    "functions/home.py": "def handler(event, context): ...\n",
    "functions/sub/helpers.py": "X = 1\n",
    "functions/__pycache__/home.cpython-311.pyc": "bytecode",
    "functions/__pycache__/stray.py": "# bytecode caches never ship\n",
    "functions/notes.txt": "not code",
    "templates/base.html": "<!doctype html>",
    "templates/site.css": "body {}",
    "templates/draft.md": "not a template",
    "tests/test_home.py": "# tests never ship\n",
    "README.md": "# readme",
}
SOURCES = [
    "functions/__init__.py",
    "functions/home.py",
    "functions/sub/helpers.py",
    "templates/base.html",
    "templates/site.css",
]
TAG = packaging.TARGET_CACHE_TAG
SHIPPED = sorted(
    SOURCES
    + [
        f"functions/__pycache__/__init__.{TAG}.pyc",
        f"functions/__pycache__/home.{TAG}.pyc",
        f"functions/sub/__pycache__/helpers.{TAG}.pyc",
    ]
)
"""The planted tree's archive: its code and templates, each .py with its bytecode; never the planted cache."""
PYTHON_313_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"
"""``importlib.util.MAGIC_NUMBER`` of every CPython 3.13 release."""


def plant(root: Path, files: dict[str, str] = PLANTED) -> Path:
    """Write a source tree under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def names_in(archive: Path) -> list[str]:
    """Entry names of a zip, in archive order."""
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


def build(root: Path, out: Path) -> Path:
    """A code archive built from scratch (its own compiled-archive cache), as on a fresh machine."""
    return packaging.build_code_archive(out, root=root, cache_dir=out / "cache")


def test_code_archive_holds_exactly_code_templates_and_bytecode(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    archive = build(root, tmp_path / "out")
    assert names_in(archive) == SHIPPED
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("functions/home.py") == PLANTED["functions/home.py"].encode()


def test_the_real_code_archive_ships_every_handler_and_template(tmp_path: Path) -> None:
    names = names_in(packaging.build_code_archive(tmp_path))
    for spec in definition.FUNCTIONS:
        module = spec.handler.rsplit(".", 1)[0]
        assert module.replace(".", "/") + ".py" in names
    expected_templates = sorted(
        p.relative_to(definition.ROOT).as_posix()
        for p in (definition.ROOT / "templates").rglob("*")
        if p.is_file() and p.suffix in definition.CODE_SUFFIXES
    )
    assert expected_templates and [n for n in names if n.startswith("templates/")] == expected_templates
    assert all(n.split("/")[0] in definition.CODE_DIRECTORIES for n in names)
    sources = [n for n in names if n.endswith(".py")]
    bytecode = [n for n in names if n.endswith(".pyc")]
    # Every source has its bytecode for Lambda's Python beside it, and nothing else is compiled.
    assert sorted(bytecode) == sorted(
        f"{n.rsplit('/', 1)[0]}/__pycache__/{n.rsplit('/', 1)[1][:-3]}.{TAG}.pyc" for n in sources
    )
    assert names == sorted(names)


def test_code_archive_is_byte_identical_across_builds(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    first = build(root, tmp_path / "one").read_bytes()
    # Same sources with other timestamps and permissions, as a fresh clone would have them.
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
            path.chmod(0o600)
    second = build(root, tmp_path / "two").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "two" / "code.zip") as zf:
        for info in zf.infolist():
            assert info.date_time == packaging.ZIP_TIMESTAMP
            assert info.external_attr >> 16 == packaging.FILE_MODE


def test_a_changed_source_changes_the_archive_and_its_hash(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    before = packaging.BuiltArchive.of(build(root, tmp_path / "out"))
    (root / "functions" / "home.py").write_text("def handler(event, context): return {}\n", encoding="utf-8")
    after = packaging.BuiltArchive.of(build(root, tmp_path / "out"))
    assert after.sha256_base64 != before.sha256_base64
    # The cache holds one compiled archive per content; the new one was compiled, not taken from the old.
    assert len(list((tmp_path / "out" / "cache").glob("code-*.zip"))) == 2


def test_an_unchanged_archive_is_not_rewritten(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    archive = packaging.build_code_archive(tmp_path / "out", root=root, cache_dir=tmp_path / "cache")
    os.utime(archive, (1_000_000_000, 1_000_000_000))
    packaging.build_code_archive(tmp_path / "out", root=root, cache_dir=tmp_path / "cache")
    assert archive.stat().st_mtime == 1_000_000_000
    assert [p.name for p in archive.parent.iterdir()] == ["code.zip"]


def test_a_missing_code_directory_is_an_error(tmp_path: Path) -> None:
    root = plant(tmp_path / "src", {"functions/home.py": ""})
    with pytest.raises(FileNotFoundError, match="templates"):
        build(root, tmp_path / "out")


def test_layer_cache_key_follows_the_pins(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("Jinja2==3.1.6\nMarkupSafe==3.0.4\n", encoding="utf-8")
    key = packaging.layer_cache_key(requirements)
    assert packaging.layer_cache_key(requirements) == key
    requirements.write_text("Jinja2==3.1.5\nMarkupSafe==3.0.4\n", encoding="utf-8")
    assert packaging.layer_cache_key(requirements) != key


def test_pip_targets_lambdas_platform_with_wheels_only(tmp_path: Path) -> None:
    command = packaging.pip_install_command(tmp_path / "python")
    joined = " ".join(command)
    for flag in (
        "--platform manylinux2014_aarch64",
        "--python-version 3.13",
        "--implementation cp",
        "--only-binary=:all:",
        "--no-compile",
        f"--target {tmp_path / 'python'}",
        f"-r {definition.LAYER_REQUIREMENTS}",
    ):
        assert flag in joined


def test_the_layer_cache_key_follows_the_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = packaging.layer_cache_key()
    source = tmp_path / "bytecode"
    shutil.copytree(packaging.COMPILER_SOURCE, source)
    monkeypatch.setattr(packaging, "COMPILER_SOURCE", source)
    assert packaging.layer_cache_key() == key
    (source / "compile.mjs").write_text((source / "compile.mjs").read_text() + "// another compiler\n")
    assert packaging.layer_cache_key() != key


def test_a_cached_layer_is_reused_without_running_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / f"jinja2-layer-{packaging.layer_cache_key()}.zip"
    cached.write_bytes(b"cached layer")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran although the layer was cached")

    monkeypatch.setattr(packaging.subprocess, "run", no_pip)
    assert packaging.build_layer(tmp_path) == cached
    assert cached.read_bytes() == b"cached layer"


def test_a_failed_pip_run_is_a_clear_error_and_leaves_no_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('no matching distribution'); sys.exit(3)"]
    monkeypatch.setattr(packaging, "pip_install_command", lambda target, requirements: failing)
    with pytest.raises(packaging.LayerBuildError, match=r"exit 3\):\nno matching distribution"):
        packaging.build_layer(tmp_path)
    assert list(tmp_path.iterdir()) == []


def pypi_reachable() -> bool:
    """Whether pip could download wheels from here."""
    for host in ("pypi.org", "files.pythonhosted.org"):
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError:
            return False
    return True


@pytest.mark.network
def test_layer_build_gives_jinja2_for_lambdas_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not pypi_reachable():
        pytest.skip("PyPI (pypi.org, files.pythonhosted.org) cannot be reached: the layer build needs it")
    archive = packaging.build_layer(tmp_path / "cache")
    names = names_in(archive)
    assert names == sorted(names) and all(n.startswith("python/") for n in names)
    assert "python/jinja2/__init__.py" in names
    # Every module of the layer comes with its Python 3.13 bytecode.
    sources = [n for n in names if n.endswith(".py")]
    assert sources and sorted(n for n in names if n.endswith(".pyc")) == sorted(
        f"{n.rsplit('/', 1)[0]}/__pycache__/{n.rsplit('/', 1)[1][:-3]}.{TAG}.pyc" for n in sources
    )
    # MarkupSafe's speedups are compiled for Lambda (CPython 3.13 on arm64), not for this machine.
    extensions = [n for n in names if n.endswith(".so")]
    assert extensions == ["python/markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so"]
    tree = tmp_path / "tree"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tree)
        wheel = zf.read(next(n for n in names if n.startswith("python/markupsafe-") and n.endswith("/WHEEL")))
        assert "Tag: cp313-cp313-manylinux2014_aarch64" in wheel.decode().splitlines()
        versions = {n.split("/")[1] for n in names if n.endswith(".dist-info/METADATA")}
    assert versions == {"jinja2-3.1.6.dist-info", "markupsafe-3.0.4.dist-info", "crawlerdetect-0.4.2.dist-info"}
    with zipfile.ZipFile(archive) as zf:
        elf = zf.read(extensions[0])
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64

    # Jinja2 imports from the layer's tree alone (MarkupSafe falls back to pure Python off-platform), and so does
    # the bot list (pure Python), which knows a crawler.
    for package, expression, printed in (
        ("jinja2", "jinja2.Environment(autoescape=True).from_string('{{ x }}').render(x='<b>')", "&lt;b&gt;"),
        ("crawlerdetect", "crawlerdetect.CrawlerDetect().is_crawler('Googlebot/2.1')", "True"),
    ):
        script = (
            f"import sys; sys.path.insert(0, sys.argv[1]); import {package}; "
            f"assert {package}.__file__.startswith(sys.argv[1]), {package}.__file__; print({expression})"
        )
        result = subprocess.run(
            [sys.executable, "-S", "-c", script, str(tree / "python")], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == printed

    # No console script (its shebang names the Python that ran pip) and no RECORD line for one: nothing in the layer
    # names this machine's interpreter or the build's directory.
    assert not [n for n in names if n.startswith("python/bin/")]
    with zipfile.ZipFile(archive) as zf:
        for name in names:
            data = zf.read(name)
            assert sys.executable.encode() not in data and str(tmp_path).encode() not in data, name
            if name.endswith("/RECORD"):
                assert not [line for line in data.decode().splitlines() if line.startswith("../")], name

    # Built again elsewhere, the same pins give the same bytes; built again here, pip does not run.
    assert packaging.build_layer(tmp_path / "other").read_bytes() == archive.read_bytes()
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip ran for a cached layer"))
    assert packaging.build_layer(tmp_path / "cache") == archive


# Bytecode: always compiled by the one pinned CPython 3.13 (components/bytecode), never by this machine's Python.


def pyc_header(archive: Path, name: str) -> tuple[bytes, int]:
    """The magic number and the flags word of a ``.pyc`` in ``archive``."""
    with zipfile.ZipFile(archive) as zf:
        data = zf.read(name)
    return data[:4], int.from_bytes(data[4:8], "little")


def test_the_bytecode_is_for_python_313_hash_based_and_unchecked(tmp_path: Path) -> None:
    archive = build(plant(tmp_path / "src"), tmp_path / "out")
    for name in (n for n in SHIPPED if n.endswith(".pyc")):
        magic, flags = pyc_header(archive, name)
        assert magic == PYTHON_313_MAGIC, name
        assert flags == 0b01, name  # hash-based, and not checked against the source at import


def fake_python(directory: Path, log: Path) -> Path:
    """A ``python3.13`` in ``directory`` that says it is CPython 3.13 and notes every time it is run."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / f"python{definition.LAYER_PYTHON_VERSION}"
    script.write_text(f"#!/bin/sh\necho run >> {log}\necho {TAG}\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def machine(monkeypatch: pytest.MonkeyPatch, home: Path, *, with_python313: bool) -> Path:
    """Set this process up as another machine: its own compiler install, PATH and pyenv/uv folders, with or
    without a Python 3.13 (a working one first on PATH, and one installed by pyenv). Returns the run log of
    that Python."""
    node_dir = str(Path(shutil.which("node") or "node").parent)
    log = home / "python313-runs.log"
    path = [node_dir, "/usr/bin", "/bin"]
    if with_python313:
        path.insert(0, str(fake_python(home / "bin", log).parent))
        fake_python(home / "pyenv" / "versions" / "3.13.9" / "bin", log)
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.setenv("PYENV_ROOT", str(home / "pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(home / "uv"))
    monkeypatch.setattr(packaging, "COMPILER_CACHE", home / "compiler")
    return log


def test_two_machines_with_and_without_python313_build_one_code_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as first:
        machine(first, tmp_path / "plain", with_python313=False)
        plain = packaging.build_code_archive(tmp_path / "plain" / "out", cache_dir=tmp_path / "plain" / "cache")
    with monkeypatch.context() as second:
        log = machine(second, tmp_path / "py313", with_python313=True)
        assert shutil.which("python3.13") == str(tmp_path / "py313" / "bin" / "python3.13")
        other = packaging.build_code_archive(tmp_path / "py313" / "out", cache_dir=tmp_path / "py313" / "cache")
    assert packaging.file_sha256_base64(plain) == packaging.file_sha256_base64(other)
    assert plain.read_bytes() == other.read_bytes()
    assert not log.exists(), "the machine's own Python 3.13 compiled something"
    # Each machine installed the pinned compiler for itself.
    assert [p.name for p in (tmp_path / "plain" / "compiler").iterdir()] == [
        p.name for p in (tmp_path / "py313" / "compiler").iterdir()
    ]


def pip_with_a_console_script(target: Path, requirements: Path) -> list[str]:
    """A pip stand-in that installs a tiny package as ``pip install --target`` does (a set constant, which
    bytecode orders by hash), console script included: ``bin/<script>`` with a shebang naming the build's own
    Python (here: a path inside the build directory) and its line in ``RECORD``."""
    source = 'def known(x):\\n    return x in {\\"alpha\\", \\"beta\\", \\"gamma\\", \\"delta\\", \\"epsilon\\"}\\n'
    script = (
        "import base64, hashlib, pathlib, sys; t = pathlib.Path(sys.argv[1]); "
        f"(t / 'jinja2').mkdir(parents=True); (t / 'jinja2' / '__init__.py').write_text('{source}'); "
        "(t / 'bin').mkdir(); tool = f'#!{t.parent}/venv/bin/python\\nimport jinja2\\n'; "
        "(t / 'bin' / 'jinja2-tool').write_text(tool); "
        "digest = base64.urlsafe_b64encode(hashlib.sha256(tool.encode()).digest()).rstrip(b'=').decode(); "
        "info = t / 'jinja2-3.1.6.dist-info'; info.mkdir(); (info / 'METADATA').write_text('Name: Jinja2\\n'); "
        "(info / 'RECORD').write_text(f'../../bin/jinja2-tool,sha256={digest},{len(tool)}\\n"
        "jinja2/__init__.py,sha256=x,6\\njinja2-3.1.6.dist-info/RECORD,,\\n')"
    )
    return [sys.executable, "-c", script, str(target)]


def test_without_dropping_console_scripts_the_two_layers_would_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test of the test: the stand-in's scripts do name each build's directory, so keeping them breaks identity."""
    monkeypatch.setattr(packaging, "pip_install_command", pip_with_a_console_script)
    monkeypatch.setattr(packaging, "drop_console_scripts", lambda site: None)
    first = packaging.build_layer(tmp_path / "one" / "layer")
    second = packaging.build_layer(tmp_path / "two" / "layer")
    assert "python/bin/jinja2-tool" in names_in(first)
    assert first.read_bytes() != second.read_bytes()


def test_two_machines_with_and_without_python313_build_one_layer_without_console_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two machines, two build directories at different depths: the console script names each one.
    monkeypatch.setattr(packaging, "pip_install_command", pip_with_a_console_script)
    with monkeypatch.context() as first:
        machine(first, tmp_path / "plain", with_python313=False)
        plain = packaging.build_layer(tmp_path / "plain" / "layer")
    with monkeypatch.context() as second:
        log = machine(second, tmp_path / "py313", with_python313=True)
        other = packaging.build_layer(tmp_path / "py313" / "elsewhere" / "deeper" / "layer")
    assert plain.name == other.name  # one cache key: the machine's Python is not part of it
    assert plain.read_bytes() == other.read_bytes()
    assert not log.exists()
    assert names_in(plain) == sorted(
        [
            "python/jinja2-3.1.6.dist-info/METADATA",
            "python/jinja2-3.1.6.dist-info/RECORD",
            "python/jinja2/__init__.py",
            f"python/jinja2/__pycache__/__init__.{TAG}.pyc",
        ]
    )
    with zipfile.ZipFile(plain) as zf:
        record = zf.read("python/jinja2-3.1.6.dist-info/RECORD").decode()
        assert record == "jinja2/__init__.py,sha256=x,6\njinja2-3.1.6.dist-info/RECORD,,\n"
        assert not [n for n in zf.namelist() if str(tmp_path).encode() in zf.read(n)]
    assert pyc_header(plain, f"python/jinja2/__pycache__/__init__.{TAG}.pyc") == (PYTHON_313_MAGIC, 0b01)


def test_without_node_the_build_says_what_to_install_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(packaging.BytecodeError, match=r"node is not on PATH: .* Node.js 18 or newer \(with npm\)"):
        build(plant(tmp_path / "src"), tmp_path / "out")
    assert not (tmp_path / "out" / "code.zip").exists()


def test_a_node_too_old_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v16.20.2\n", encoding="utf-8")
    old.chmod(0o755)
    with pytest.raises(packaging.BytecodeError, match=r"\(v16.20.2\) cannot run the bytecode compiler"):
        packaging.check_node(str(old))


def test_sources_python_313_cannot_compile_are_a_clear_error(tmp_path: Path) -> None:
    root = plant(tmp_path / "src", {**PLANTED, "functions/broken.py": "def broken(:\n"})
    with pytest.raises(packaging.BytecodeError, match=r"could not be compiled for Lambda's Python 3.13 \(exit 1\)"):
        build(root, tmp_path / "out")
    assert not (tmp_path / "out" / "code.zip").exists()
    assert not list((tmp_path / "out" / "cache").glob("*.zip"))


def local_python313() -> str | None:
    """A CPython 3.13 on this machine, if any (only to check the shipped bytecode runs, never to build it)."""
    candidates = [shutil.which("python3.13"), *sorted(Path.home().glob(".pyenv/versions/3.13.*/bin/python3.13"))]
    for candidate in candidates:
        if candidate is None:
            continue
        result = subprocess.run(
            [str(candidate), "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip() == TAG:
            return str(candidate)
    return None


def test_a_python313_runs_the_shipped_bytecode_without_reading_the_sources(tmp_path: Path) -> None:
    python = local_python313()
    if python is None:
        pytest.skip("no CPython 3.13 on this machine to run the bytecode with")
    task = tmp_path / "task"
    with zipfile.ZipFile(packaging.build_code_archive(tmp_path / "out")) as zf:
        zf.extractall(task)
    modules = ["functions.keys", "functions.history", "functions.tags"]
    for module in modules:
        # The source must exist for the import system, but unchecked bytecode is used without reading it.
        (task / (module.replace(".", "/") + ".py")).write_text("raise SystemExit('the source was read')\n")
    # The import system renames a code object after the file it was found beside; the name compiled in is
    # what the bytecode itself holds, read back with marshal.
    script = (
        "import sys, importlib, marshal; sys.path.insert(0, sys.argv[1]); "
        f"mods = [importlib.import_module(m) for m in {modules!r}]; "
        "code = marshal.loads(open(mods[1].__cached__, 'rb').read()[16:]); "
        "print(mods[0].TAG_PREFIX, mods[2].normalize_tag('Café'), code.co_filename)"
    )
    result = subprocess.run(
        [python, "-I", "-c", script, str(task)], capture_output=True, text=True, check=False, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tag#", "café", "/var/task/functions/history.py"]

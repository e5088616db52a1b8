"""The code archive and the Jinja2 layer: exact contents, identical bytes on every build, cached layer builds."""

from __future__ import annotations

import marshal
import os
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
SHIPPED = [
    "functions/__init__.py",
    "functions/home.py",
    "functions/sub/helpers.py",
    "templates/base.html",
    "templates/site.css",
]


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


def test_code_archive_holds_exactly_code_and_templates(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    archive = packaging.build_code_archive(tmp_path / "out", root=root)
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
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert names == sorted(names)


def test_code_archive_is_byte_identical_across_builds(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    first = packaging.build_code_archive(tmp_path / "one", root=root).read_bytes()
    # Same sources with other timestamps and permissions, as a fresh clone would have them.
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
            path.chmod(0o600)
    second = packaging.build_code_archive(tmp_path / "two", root=root).read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "two" / "code.zip") as zf:
        for info in zf.infolist():
            assert info.date_time == packaging.ZIP_TIMESTAMP
            assert info.external_attr >> 16 == packaging.FILE_MODE


def test_the_real_code_archive_is_byte_identical_across_builds(tmp_path: Path) -> None:
    first = packaging.build_code_archive(tmp_path / "one")
    second = packaging.build_code_archive(tmp_path / "two")
    assert first.read_bytes() == second.read_bytes()
    assert packaging.file_sha256_base64(first) == packaging.file_sha256_base64(second)


def test_a_changed_source_changes_the_archive_and_its_hash(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    before = packaging.BuiltArchive.of(packaging.build_code_archive(tmp_path / "out", root=root))
    (root / "functions" / "home.py").write_text("def handler(event, context): return {}\n", encoding="utf-8")
    after = packaging.BuiltArchive.of(packaging.build_code_archive(tmp_path / "out", root=root))
    assert after.sha256_base64 != before.sha256_base64


def test_an_unchanged_archive_is_not_rewritten(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    archive = packaging.build_code_archive(tmp_path / "out", root=root)
    os.utime(archive, (1_000_000_000, 1_000_000_000))
    packaging.build_code_archive(tmp_path / "out", root=root)
    assert archive.stat().st_mtime == 1_000_000_000
    assert [p.name for p in archive.parent.iterdir()] == ["code.zip"]


def test_a_missing_code_directory_is_an_error(tmp_path: Path) -> None:
    root = plant(tmp_path / "src", {"functions/home.py": ""})
    with pytest.raises(FileNotFoundError, match="templates"):
        packaging.build_code_archive(tmp_path / "out", root=root)


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


def test_a_cached_layer_is_reused_without_running_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / f"jinja2-layer-{packaging.layer_cache_key(compiler=None)}.zip"
    cached.write_bytes(b"cached layer")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran although the layer was cached")

    monkeypatch.setattr(packaging.subprocess, "run", no_pip)
    assert packaging.build_layer(tmp_path, compiler=None) == cached
    assert cached.read_bytes() == b"cached layer"


def test_a_failed_pip_run_is_a_clear_error_and_leaves_no_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('no matching distribution'); sys.exit(3)"]
    monkeypatch.setattr(packaging, "pip_install_command", lambda target, requirements: failing)
    with pytest.raises(packaging.LayerBuildError, match=r"exit 3\):\nno matching distribution"):
        packaging.build_layer(tmp_path, compiler=None)
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
    archive = packaging.build_layer(tmp_path / "cache", compiler=None)
    names = names_in(archive)
    assert names == sorted(names) and all(n.startswith("python/") for n in names)
    assert "python/jinja2/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
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

    # Built again elsewhere, the same pins give the same bytes; built again here, pip does not run.
    assert packaging.build_layer(tmp_path / "other", compiler=None).read_bytes() == archive.read_bytes()
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip ran for a cached layer"))
    assert packaging.build_layer(tmp_path / "cache", compiler=None) == archive


# Bytecode: compiled by the target Python when one is at hand. The logic is tested with fake interpreters and with
# this interpreter standing in for Python 3.13 (the cache tag in the names is then this interpreter's).
TAG = sys.implementation.cache_tag


def fake_python(directory: Path, body: str) -> Path:
    """A ``python3.13`` shell script in ``directory`` that runs ``body`` (``$@`` are its arguments)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / f"python{definition.LAYER_PYTHON_VERSION}"
    script.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def pyc(archive: Path, name: str) -> tuple[int, object]:
    """The flags word and the code object of a ``.pyc`` in ``archive`` (compiled by this interpreter)."""
    with zipfile.ZipFile(archive) as zf:
        data = zf.read(name)
    return int.from_bytes(data[4:8], "little"), marshal.loads(data[16:])


def fake_pip(target: Path, requirements: Path) -> list[str]:
    """A pip stand-in that installs a tiny package into ``target`` (with a set constant, ordered by hash)."""
    script = (
        "import pathlib, sys; t = pathlib.Path(sys.argv[1]); (t / 'jinja2').mkdir(parents=True); "
        "(t / 'jinja2' / '__init__.py').write_text('def known(x):\\n    return x in {\"alpha\", \"beta\", \"gamma\", "
        "\"delta\", \"epsilon\"}\\n'); "
        "(t / 'jinja2-3.1.6.dist-info').mkdir(); (t / 'jinja2-3.1.6.dist-info' / 'METADATA').write_text('Name: Jinja2')"
    )
    return [sys.executable, "-c", script, str(target)]


def test_the_deploying_interpreter_compiles_when_it_is_the_target_python(tmp_path: Path) -> None:
    python, reason = packaging.find_target_python(
        executable="/usr/bin/python-target", cache_tag=packaging.TARGET_CACHE_TAG, search_path=str(tmp_path)
    )
    assert (python, reason) == ("/usr/bin/python-target", "the deploying interpreter is Python 3.13")


@pytest.mark.parametrize(
    ("body", "found", "why"),
    [
        ("echo cpython-313", True, "is Python 3.13"),
        ("echo cpython-312", False, "is cpython-312"),
        # A version manager's shim for a version that is installed but not selected.
        ("echo 'pyenv: python3.13: command not found' >&2; exit 127", False, "does not run"),
    ],
)
def test_python313_on_path_is_used_only_if_it_runs_and_is_313(
    tmp_path: Path, body: str, found: bool, why: str
) -> None:
    script = fake_python(tmp_path / "bin", body)
    python, reason = packaging.find_target_python(
        cache_tag="cpython-311", search_path=str(tmp_path / "bin"), installed=()
    )
    assert python == (str(script) if found else None)
    assert why in reason


def test_a_python313_that_cannot_even_be_started_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    binary = tmp_path / "bin" / "python3.13"
    binary.write_bytes(b"\x7fELF not really")  # executable, but no program the system can start
    binary.chmod(0o755)
    python, reason = packaging.find_target_python(
        cache_tag="cpython-311", search_path=str(tmp_path / "bin"), installed=()
    )
    assert python is None and reason == f"{binary} does not run"


def test_without_python313_on_path_there_is_no_compiler(tmp_path: Path) -> None:
    python, reason = packaging.find_target_python(cache_tag="cpython-311", search_path=str(tmp_path), installed=())
    assert python is None
    assert reason == "python3.13 is not on PATH and this interpreter is cpython-311"


def test_an_installed_python313_behind_a_shim_that_does_not_run_is_used(tmp_path: Path) -> None:
    # GIVEN a pyenv-style shim on PATH that fails (3.13 is not the selected version) and 3.13 installed beside it
    fake_python(tmp_path / "shims", "echo 'pyenv: python3.13: command not found' >&2; exit 127")
    installed = fake_python(tmp_path / "versions" / "3.13.0" / "bin", f"echo {packaging.TARGET_CACHE_TAG}")
    # WHEN the packaging looks for a compiler THEN it uses the installed one and says why the shim was passed over
    python, reason = packaging.find_target_python(
        cache_tag="cpython-311", search_path=str(tmp_path / "shims"), installed=[str(installed)]
    )
    assert python == str(installed)
    assert "does not run" in reason and str(installed) in reason


def test_installed_pythons_are_found_under_pyenv_and_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pyenv = fake_python(tmp_path / "pyenv" / "versions" / "3.13.1" / "bin", "true")
    uv = fake_python(tmp_path / "uv" / "cpython-3.13.0-linux-aarch64-gnu" / "bin", "true")
    fake_python(tmp_path / "pyenv" / "versions" / "3.12.1" / "bin", "true")  # another version: not listed
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv"))
    assert packaging.installed_target_pythons() == sorted([str(pyenv), str(uv)], reverse=True)


@pytest.mark.parametrize("found", [None, "/opt/python3.13/bin/python3.13"])
def test_the_program_says_once_whether_it_ships_bytecode(
    monkeypatch: pytest.MonkeyPatch, found: str | None
) -> None:
    said: list[tuple[str, str]] = []
    monkeypatch.setattr(packaging, "find_target_python", lambda: (found, "the reason"))
    monkeypatch.setattr(packaging.pulumi.log, "warn", lambda message, *a, **k: said.append(("warn", message)))
    monkeypatch.setattr(packaging.pulumi.log, "info", lambda message, *a, **k: said.append(("info", message)))
    packaging.target_python.cache_clear()
    try:
        assert packaging.target_python() == found
        assert packaging.target_python() == found
        # The layer's cache entry follows the choice: a sources-only zip is never reused as a compiled one.
        assert (packaging.layer_cache_key() == packaging.layer_cache_key(compiler=None)) == (found is None)
    finally:
        packaging.target_python.cache_clear()
    [(level, message)] = said
    if found is None:
        assert level == "warn"
        assert message.startswith("shipping Python sources without bytecode: the reason.")
        assert "python3.13" in message and "cold start" in message
    else:
        assert (level, message) == ("info", "shipping bytecode for Lambda's Python: the reason")


def test_bytecode_is_compiled_unchecked_hash_under_lambdas_paths(tmp_path: Path) -> None:
    command = packaging.compile_command("/usr/bin/python3.13", tmp_path, packaging.LAYER_ROOT)
    assert command[:3] == ["/usr/bin/python3.13", "-m", "compileall"]
    joined = " ".join(command)
    assert "--invalidation-mode unchecked-hash" in joined
    assert f"-s {tmp_path} -p /opt {tmp_path}" in joined


def test_a_compiled_code_archive_holds_unchecked_bytecode_named_for_var_task(tmp_path: Path) -> None:
    root = plant(tmp_path / "src")
    archive = packaging.build_code_archive(tmp_path / "out", root=root, compiler=sys.executable)
    compiled = [
        f"functions/__pycache__/__init__.{TAG}.pyc",
        f"functions/__pycache__/home.{TAG}.pyc",
        f"functions/sub/__pycache__/helpers.{TAG}.pyc",
    ]
    # The planted __pycache__ (a stale .pyc, a stray .py) never ships; the compiled bytecode does.
    assert names_in(archive) == sorted(SHIPPED + compiled)
    flags, code = pyc(archive, f"functions/__pycache__/home.{TAG}.pyc")
    assert flags == 0b01  # hash-based, and not checked against the source at import
    assert code.co_filename == "/var/task/functions/home.py"
    assert not any(str(tmp_path) in str(const) for const in code.co_consts)


def test_a_compiled_code_archive_is_byte_identical_across_builds(tmp_path: Path) -> None:
    sets = "def f(x):\n    return x in {'a', 'b', 'c', 'd'}\n"
    root = plant(tmp_path / "src", {**PLANTED, "functions/sets.py": sets})
    first = packaging.build_code_archive(tmp_path / "one", root=root, compiler=sys.executable).read_bytes()
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
    second = packaging.build_code_archive(tmp_path / "two", root=root, compiler=sys.executable).read_bytes()
    assert first == second


def test_the_real_code_archive_ships_sources_by_default(tmp_path: Path) -> None:
    # Its bytecode would take it past the 50 KB budget; the layer is where bytecode pays (see build_code_archive).
    names = names_in(packaging.build_code_archive(tmp_path))
    assert names and not [n for n in names if n.endswith(".pyc")]


def test_sources_the_target_python_cannot_compile_are_a_clear_error(tmp_path: Path) -> None:
    root = plant(tmp_path / "src", {**PLANTED, "functions/broken.py": "def broken(:\n"})
    with pytest.raises(packaging.BytecodeError, match=r"could not compile the sources for Lambda \(exit 1\)"):
        packaging.build_code_archive(tmp_path / "out", root=root, compiler=sys.executable)
    assert not (tmp_path / "out" / "code.zip").exists()


def test_a_compiled_layer_names_its_bytecode_under_opt_and_is_reproducible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packaging, "pip_install_command", fake_pip)
    compiled = packaging.build_layer(tmp_path / "one", compiler=sys.executable)
    sources = packaging.build_layer(tmp_path / "one", compiler=None)
    assert compiled != sources  # two cache entries side by side
    assert names_in(sources) == ["python/jinja2-3.1.6.dist-info/METADATA", "python/jinja2/__init__.py"]
    assert names_in(compiled) == sorted(names_in(sources) + [f"python/jinja2/__pycache__/__init__.{TAG}.pyc"])
    flags, code = pyc(compiled, f"python/jinja2/__pycache__/__init__.{TAG}.pyc")
    assert flags == 0b01 and code.co_filename == "/opt/python/jinja2/__init__.py"
    # Built again elsewhere, by another process: the same bytes.
    assert packaging.build_layer(tmp_path / "two", compiler=sys.executable).read_bytes() == compiled.read_bytes()


def test_a_compiler_that_fails_leaves_no_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "pip_install_command", fake_pip)
    broken = fake_python(tmp_path / "bin", "echo 'Fatal Python error: init_fs_encoding' >&2; exit 1")
    with pytest.raises(packaging.BytecodeError, match="init_fs_encoding"):
        packaging.build_layer(tmp_path / "cache", compiler=str(broken))
    assert list((tmp_path / "cache").iterdir()) == []


def test_with_a_real_python313_the_bytecode_is_for_lambda_and_reproducible(tmp_path: Path) -> None:
    python, reason = packaging.find_target_python()
    if python is None:
        pytest.skip(f"no Python 3.13 to compile with here: {reason}")
    first = packaging.build_code_archive(tmp_path / "one", compiler=python)
    second = packaging.build_code_archive(tmp_path / "two", compiler=python)
    assert first.read_bytes() == second.read_bytes()
    assert "functions/__pycache__/web.cpython-313.pyc" in names_in(first)

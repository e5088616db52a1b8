"""The code archive and the Jinja2 layer: exact contents, identical bytes on every build, cached layer builds."""

from __future__ import annotations

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
    assert versions == {"jinja2-3.1.6.dist-info", "markupsafe-3.0.4.dist-info"}
    with zipfile.ZipFile(archive) as zf:
        elf = zf.read(extensions[0])
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64

    # Jinja2 imports from the layer's tree alone (MarkupSafe falls back to pure Python off-platform).
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import jinja2, markupsafe; "
        "assert jinja2.__file__.startswith(sys.argv[1]), jinja2.__file__; "
        "print(jinja2.Environment(autoescape=True).from_string('{{ x }}').render(x='<b>'))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(tree / "python")], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "&lt;b&gt;"

    # Built again elsewhere, the same pins give the same bytes; built again here, pip does not run.
    assert packaging.build_layer(tmp_path / "other").read_bytes() == archive.read_bytes()
    monkeypatch.setattr(packaging.subprocess, "run", lambda *a, **k: pytest.fail("pip ran for a cached layer"))
    assert packaging.build_layer(tmp_path / "cache") == archive

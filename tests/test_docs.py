"""The README and the pages in ``docs/`` stay true: every link leads somewhere, the README stays a front page with
the two commands, and every local command they show runs as written (its subcommand and options exist)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

import definition
from admin import cli
from bench import __main__ as bench_main
from localsite import __main__ as site_main

ROOT = definition.ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
INLINE = re.compile(r"`((?:\./dev|\.venv/bin/python -m) [^`]+)`")


def commands() -> list[tuple[str, str]]:
    """Every local command the pages show, with the page it is on: sh blocks' lines and inline code."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lines = [line for block in SH_BLOCK.findall(text) for line in block.splitlines()]
        lines += INLINE.findall(text)
        for line in lines:
            command = line.split(" #")[0].strip()
            if command.startswith(("./dev ", ".venv/bin/python -m ")):
                found.append((page.name, command))
    return found


def help_text(parse: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 0, argv
    return capsys.readouterr().out


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_names_a_file_that_exists(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "#")):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_is_a_front_page_with_both_commands_and_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 100
    first_block = SH_BLOCK.search(readme)
    assert first_block and "./dev site" in first_block.group(1) and "./dev test" in first_block.group(1)
    for page in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in readme, f"the README does not link docs/{page.name}"


@pytest.mark.parametrize(("page", "command"), commands(), ids=lambda value: value if isinstance(value, str) else None)
def test_each_documented_command_exists_with_its_options(page: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    words = shlex.split(command.replace("[", " ").replace("]", " ").replace("|", " "))
    options = {word.split("=")[0] for word in words if word.startswith("--")}
    if words[0] == ".venv/bin/python":
        assert importlib.util.find_spec(words[2]) is not None, f"{page}: no module {words[2]}"
        if not options:
            return
        text = help_text(importlib.import_module(words[2]).main, ["--help"], capsys)
        name = words[2]
    elif (name := words[1]) == "admin":
        sub = next((word for word in words[2:] if not word.startswith("-")), None)
        text = help_text(cli.parser().parse_args, [sub, "--help"] if sub else ["--help"], capsys)
    elif name == "site":
        text = help_text(site_main._arguments, ["--help"], capsys)
    elif name == "bench":
        text = help_text(bench_main.parse_args, ["--help"], capsys)
    else:
        assert name in ("test", "--help"), f"{page}: ./dev has no command {name}"
        return
    missing = [option for option in options if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)]
    assert not missing, f"{page}: `{command}` uses {missing}, which `./dev {name} --help` does not list"

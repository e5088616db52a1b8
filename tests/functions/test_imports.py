"""What each deployed function imports: no pulumi anywhere in functions/, no Jinja2 in the stream processor."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import functions

ROOT = Path(__file__).resolve().parents[2]


def loaded_modules(*modules: str) -> set[str]:
    """sys.modules after importing ``modules`` in a fresh interpreter."""
    code = "import importlib, json, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output))


def test_no_module_in_functions_imports_pulumi() -> None:
    modules = [f"functions.{info.name}" for info in pkgutil.iter_modules(functions.__path__)]
    assert {"functions.home", "functions.visit", "functions.count", "functions.stream_processor"} <= set(modules)
    loaded = loaded_modules(*modules)
    assert set(modules) <= loaded
    assert not {name for name in loaded if name == "pulumi" or name.startswith(("pulumi.", "pulumi_"))}
    assert "definition" not in loaded  # Lambda gets its settings from the environment, not from the program


def test_stream_processor_never_imports_jinja2() -> None:
    loaded = loaded_modules("functions.stream_processor")
    assert "functions.stream_processor" in loaded
    assert not {name for name in loaded if name.startswith(("jinja2", "markupsafe", "crawlerdetect"))}
    assert "functions.web" not in loaded


def test_route_handlers_do_import_jinja2() -> None:
    # The counterpart of the test above: it can tell the difference.
    assert "jinja2" in loaded_modules("functions.visit")


def test_only_the_counting_function_loads_the_bot_list() -> None:
    # Its pattern compiles at import (about 15 ms of init): the pages that never count do not pay for it.
    assert "crawlerdetect" in loaded_modules("functions.visit")
    assert not {name for name in loaded_modules("functions.home", "functions.count") if name.startswith("crawlerdetect")}

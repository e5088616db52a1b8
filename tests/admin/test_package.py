"""The command's place: outside the Lambda code archive, the IAM actions it documents are the ones it calls."""

from __future__ import annotations

import ast
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

import definition
from admin import cli
from admin.permissions import ACTIONS
from components import packaging

from .conftest import Admin

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_is_not_in_the_code_archive(tmp_path: Path) -> None:
    assert "admin" not in definition.CODE_DIRECTORIES
    assert not (ROOT / "functions" / "reconcile.py").exists()
    names = zipfile.ZipFile(packaging.build_code_archive(tmp_path)).namelist()
    assert names and not any(name.startswith("admin/") or "reconcile" in name for name in names)


def test_no_lambda_code_imports_the_command() -> None:
    for path in (ROOT / "functions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("admin"), path
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("admin") for alias in node.names), path


def record(client: Any, operations: list[str]) -> None:
    def hook(model: Any, **_: Any) -> None:
        operations.append(f"dynamodb:{model.name}")

    client.meta.events.register("before-call", hook)


SUBCOMMANDS = {
    "set": ["set", "t", "5"],
    "reset": ["reset", "a", "--yes"],
    "delete": ["delete", "a", "--yes"],
    "import": ["import", "{file}", "--yes"],
    "export": ["export"],
    "reconcile": ["reconcile", "--settle", "1"],
}


@pytest.mark.parametrize("subcommand", list(SUBCOMMANDS))
def test_each_subcommand_calls_exactly_the_actions_it_documents(
    admin: Admin, tmp_path: Path, subcommand: str, settle_at_once: None
) -> None:
    assert admin("set", "a", "3").code == cli.OK
    assert admin.site.get("/tags/b")["statusCode"] == 200
    admin.drain()
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"tag": "a", "visits": 1, "days": {}}) + "\n", encoding="utf-8")
    operations: list[str] = []
    record(admin.site.client, operations)
    record(admin.site.streams, operations)
    argv = [part.replace("{file}", str(source)) for part in SUBCOMMANDS[subcommand]]
    result = admin(*argv)
    assert result.code == cli.OK, result.err
    if subcommand == "reconcile":
        admin.site.client.put_item(TableName="tag-counter-test", Item={"pk": {"S": "site#total"}, "visits": {"N": "0"}})
        operations.remove("dynamodb:PutItem")  # the test's own write, not the command's
        assert admin(*argv).code == cli.OK  # and once more with a total to write
    assert set(operations) == set(ACTIONS[subcommand])


def test_the_operating_page_lists_each_subcommands_actions_and_every_exit_code() -> None:
    section = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    for subcommand, actions in ACTIONS.items():
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        row = next(line for line in rows if f"`{subcommand}`" in line.split("|")[1])
        assert all(f"`{action.split(':')[1]}`" in row for action in actions), (subcommand, row)
    for code in (cli.OK, cli.NOT_STEADY, cli.BAD_INPUT, cli.REFUSED, cli.AWS_ERROR, cli.NOT_CONFIRMED, cli.BUG):
        assert f"| {code} |" in section
    assert "python -m functions.reconcile" not in section

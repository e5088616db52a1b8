"""What was made faster for the benchmark's goals behaves exactly as before.

- The stream processor reads usual records on a fast path; every record gets the same answer (the same change,
  or ``MalformedRecord``) as from the fully checked path, for records read from moto's real stream and for
  generated mutations of them.
- In Lambda, the store hides the container's start-up objects from the cyclic garbage collector; elsewhere
  (tests, the local site) it does not.
- The cold-start benchmark ships the bytecode a pass says, as the packaging would.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import definition
from bench import coldstart
from functions import stream_processor
from functions.stream_processor import Change, MalformedRecord, _checked_change, read_change, read_changes
from localsite.aws import DUMMY_ENVIRONMENT

EVENTS = Path(__file__).resolve().parent.parent / "events"


def captured_records() -> list[dict[str, Any]]:
    """The records of a captured Lambda stream event (INSERT, MODIFY, REMOVE, the total's own record)."""
    return json.loads((EVENTS / "stream_batch.json").read_text(encoding="utf-8"))["Records"]


DAYS = frozenset({"d20261130", "d20261201", "d20261202"})
"""The days the total keeps in these tests (a window of two days and the margin)."""


def with_days(record: dict[str, Any]) -> dict[str, Any]:
    """The record with days in its images, as a visit's write leaves them: one day moved, one expired."""
    record = copy.deepcopy(record)
    images = record["dynamodb"]
    if "OldImage" in images:
        images["OldImage"].update({"d20261129": {"N": "4"}, "d20261130": {"N": "2"}, "d20261201": {"N": "1"}})
    if "NewImage" in images:
        images["NewImage"].update({"d20261130": {"N": "2"}, "d20261201": {"N": "2"}})
    return record


def outcome(read: Callable[..., Change], record: Any, days: frozenset[str] = frozenset()) -> Change | str:
    """What a reader makes of a record: its change, or the text of its ``MalformedRecord``."""
    try:
        return read(record, days)
    except MalformedRecord as error:
        return f"malformed: {error}"


@pytest.mark.parametrize("index", range(len(captured_records())))
def test_captured_records_take_the_fast_path_and_agree(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    record = captured_records()[index]
    expected = _checked_change(record)
    # GIVEN a usual record, WHEN it is read, THEN the checked path is not even needed.
    calls: list[Any] = []
    monkeypatch.setattr(stream_processor, "_checked_change", lambda r, *_: calls.append(r) or expected)
    assert read_change(record) == expected
    assert calls == []


def test_a_tag_insert_without_a_count_is_read_by_the_checked_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # an item put with its key alone: no count, which counts 0.
    record = copy.deepcopy(captured_records()[0])
    del record["dynamodb"]["NewImage"]["visits"]
    calls: list[Any] = []
    checked = stream_processor._checked_change
    monkeypatch.setattr(stream_processor, "_checked_change", lambda r, *rest: calls.append(r) or checked(r, *rest))
    assert read_change(record) == Change(int(record["dynamodb"]["SequenceNumber"]), 0)
    assert calls == [record]


# Values a field may take in a broken record: wrong types, odd strings, missing.
ODD_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 10**40),
    st.booleans(),
    st.sampled_from(["", "12x", "²", "１２", " 7", "1_0", "-3", "1.5", "INSERT", "UPSERT", "tag#x", "site#total"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["N", "S", "visits"]), st.sampled_from(["1", "x", 3]), max_size=2),
)
PATHS = [
    ("eventName",),
    ("dynamodb",),
    ("dynamodb", "SequenceNumber"),
    ("dynamodb", "Keys"),
    ("dynamodb", "Keys", "pk"),
    ("dynamodb", "Keys", "pk", "S"),
    ("dynamodb", "NewImage"),
    ("dynamodb", "NewImage", "visits"),
    ("dynamodb", "NewImage", "visits", "N"),
    ("dynamodb", "OldImage"),
    ("dynamodb", "OldImage", "visits"),
    ("dynamodb", "OldImage", "visits", "N"),
    ("dynamodb", "NewImage", "d20261201"),
    ("dynamodb", "NewImage", "d20261201", "N"),
    ("dynamodb", "OldImage", "d20261201"),
    ("dynamodb", "OldImage", "d20261201", "N"),
    ("dynamodb", "NewImage", "d20261202"),
    ("dynamodb", "OldImage", "d20261130", "N"),
]
MISSING = object()


def mutate(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set (or, for ``MISSING``, delete) the field at ``path``, if its parents are still maps."""
    target: Any = record
    for key in path[:-1]:
        if not isinstance(target, dict) or key not in target:
            return
        target = target[key]
    if isinstance(target, dict):
        if value is MISSING:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(captured_records()) - 1),
    changes=st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(st.just(MISSING), ODD_VALUES)), max_size=3),
)
def test_any_record_gets_the_same_answer_as_from_the_checked_path(index: int, changes: list[Any]) -> None:
    record = with_days(captured_records()[index])
    for path, value in changes:
        mutate(record, path, value)
    # Never an exception other than MalformedRecord, and never a different answer, with days or without.
    for days in (frozenset(), DAYS):
        assert outcome(read_change, record, days) == outcome(_checked_change, record, days)


def test_day_changes_follow_the_rules_on_both_paths() -> None:
    records = {record["eventName"]: with_days(record) for record in captured_records()
               if record["dynamodb"]["Keys"]["pk"]["S"].startswith("tag#")}
    expected = {
        # new - old for the new image's days; d20261129, only in the old image, was dropped as expired
        "MODIFY": {"d20261201": 1},
        "INSERT": {"d20261130": 2, "d20261201": 2},  # every day of the new item
        "REMOVE": {"d20261130": -2, "d20261201": -1},  # every day it held, within the window
    }
    for name, days in expected.items():
        assert dict(read_change(records[name], DAYS).days) == days
        assert dict(_checked_change(records[name], DAYS).days) == days


@pytest.mark.parametrize(
    ("problem", "break_record"),
    [
        ("SequenceNumber is not a decimal number", lambda r: r["dynamodb"].__setitem__("SequenceNumber", "12²")),
        ("unexpected eventName ['INSERT']", lambda r: r.__setitem__("eventName", ["INSERT"])),
        ("no string partition key", lambda r: r["dynamodb"].__setitem__("Keys", ["pk"])),
        ("dynamodb is not a map", lambda r: r.__setitem__("dynamodb", _Indexable())),
    ],
)
def test_records_that_used_to_crash_the_processor_are_malformed(
    problem: str, break_record: Callable[[dict[str, Any]], None]
) -> None:
    record = copy.deepcopy(captured_records()[1])
    break_record(record)
    with pytest.raises(MalformedRecord, match="^" + problem.replace("[", r"\[").replace("]", r"\]") + "$"):
        read_change(record)


class _Indexable:
    """Something that answers ``["SequenceNumber"]`` like a map but is none."""

    def __getitem__(self, key: str) -> str:
        return "123"


def test_a_batch_with_a_bad_record_is_read_record_by_record(caplog: pytest.LogCaptureFixture) -> None:
    records = captured_records()
    good = [read_change(record) for record in records]
    broken = copy.deepcopy(records)
    broken[2]["dynamodb"]["SequenceNumber"] = "x"
    with caplog.at_level("ERROR", logger="functions"):
        assert read_changes(broken) == good[:2] + good[3:]
    [logged] = [r for r in caplog.records if r.getMessage() == "malformed stream record skipped"]
    assert logged.record_index == 2
    assert read_changes(iter(records)) == good  # any iterable, not only lists


def _get_store_in_a_fresh_interpreter(extra_env: dict[str, str]) -> dict[str, int]:
    script = (
        "import gc, json; from functions.store import get_store; get_store(); "
        "print(json.dumps({'frozen': gc.get_freeze_count()}))"
    )
    env = {"PATH": os.environ.get("PATH", ""), **DUMMY_ENVIRONMENT, "TABLE_NAME": "t",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, **extra_env}
    done = subprocess.run([sys.executable, "-c", script], cwd=definition.ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_in_lambda_the_store_freezes_the_start_up_objects() -> None:
    assert _get_store_in_a_fresh_interpreter({"AWS_LAMBDA_FUNCTION_NAME": "tag-counter-visit"})["frozen"] > 10_000


def test_outside_lambda_nothing_is_frozen() -> None:
    assert _get_store_in_a_fresh_interpreter({})["frozen"] == 0


@pytest.mark.parametrize(
    ("mode", "compiled"),
    [
        (coldstart.NO_BYTECODE, set()),
        (coldstart.LAYER_BYTECODE, {"layer"}),
        (coldstart.ALL_BYTECODE, {"task", "layer"}),
    ],
)
def test_a_cold_start_pass_ships_the_bytecode_it_says(tmp_path: Path, mode: str, compiled: set[str]) -> None:
    task, layer, _ = coldstart.prepare_task_root(tmp_path, bytecode=mode)
    has_bytecode = {
        name for name, root in (("task", task), ("layer", layer)) if any(root.rglob("__pycache__/*.pyc"))
    }
    assert has_bytecode == compiled
    assert (task / "functions" / "web.py").is_file() and (layer / "jinja2" / "__init__.py").is_file()
    assert coldstart.child_environment("http://127.0.0.1:1", "t", layer)["PYTHONDONTWRITEBYTECODE"] == "1"


def test_an_unknown_bytecode_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bytecode must be one of"):
        coldstart.prepare_task_root(tmp_path, bytecode="some")


def test_the_first_pass_ships_what_the_packaging_ships() -> None:
    from components import packaging

    assert coldstart.shipped_bytecode() == (coldstart.ALL_BYTECODE, f"compiled by {packaging.COMPILER_DESCRIPTION}")
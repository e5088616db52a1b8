"""The unique-visitor window's secret in the program: created by it, secret, only on the counting functions,
never in plain config or a stack output; and the honest-count settings on every function."""

from __future__ import annotations

import json

import definition
from tests.stack.conftest import MOCK_VISITOR_KEY, ProgramRun, reveal, run_program, stack_config_strings

FUNCTION = "aws:lambda/function:Function"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def with_window(minutes: int) -> ProgramRun:
    config = {**stack_config_strings("dev"), "tag-counter:uniqueVisitorWindowMinutes": str(minutes)}
    return run_program(config)


def environments(program: ProgramRun) -> dict[str, dict[str, str]]:
    return {f["handler"]: reveal(f["environment"])["variables"] for f in program.of_type(FUNCTION)}


def test_without_a_window_there_is_no_secret(program: ProgramRun) -> None:
    assert program.of_type(RANDOM_PASSWORD) == []
    for variables in environments(program).values():
        assert "VISITOR_KEY" not in variables
        assert variables["COUNT_BOTS"] == "false" and variables["UNIQUE_VISITOR_WINDOW_MINUTES"] == "0"


def test_a_window_creates_one_secret_key_for_the_counting_functions_only() -> None:
    program = with_window(30)
    [password] = program.of_type(RANDOM_PASSWORD)
    assert password["length"] >= 32
    checked = 0
    for spec in definition.FUNCTIONS:
        variables = environments(program)[spec.handler]
        assert variables["UNIQUE_VISITOR_WINDOW_MINUTES"] == "30"
        if spec.counts_visits:
            assert variables["VISITOR_KEY"] == MOCK_VISITOR_KEY
            checked += 1
        else:
            assert "VISITOR_KEY" not in variables
    assert checked == sum(spec.counts_visits for spec in definition.FUNCTIONS) >= 1
    # Not in any stack output, nor in the config the program was given.
    assert MOCK_VISITOR_KEY not in json.dumps(reveal(program.outputs), default=str)
    assert MOCK_VISITOR_KEY not in json.dumps(stack_config_strings("dev"))


def test_the_key_is_a_pulumi_secret_and_so_is_the_environment_holding_it() -> None:
    # The state encrypts secrets: the key itself, and each function input it flows into.
    program = with_window(30)
    [password] = program.of_type(RANDOM_PASSWORD)
    assert "result" in password.additional_secret_outputs
    for spec in definition.FUNCTIONS:
        function = next(f for f in program.of_type(FUNCTION) if f["handler"] == spec.handler)
        assert ("environment" in function.secret_inputs) is spec.counts_visits

"""The fresh interpreter of one cold-start run (run as ``python -c <this source> <spec.json>``, never imported).

``handler`` mode is Lambda's init and invokes: it imports a function's handler module (init), serves a first
request, then a few more (warm requests of the same container). ``floor`` mode does the least any function
must do: its init imports boto3 (and Jinja2 for a page function), creates a DynamoDB client and compiles the
same templates; its requests make the same DynamoDB call directly. Both start their clocks at the first line,
so the interpreter's own start-up (the same for both) is left out of these figures.

Each phase is timed in wall time and in CPU time (``time.process_time``): CPU time is what Lambda's CPU share
scales, and it does not count the wait for moto's answers. The result is one line on stdout:
``BENCH-RESULT {json}``.
"""

import time

T0 = time.perf_counter()
CPU0 = time.process_time()

import gc  # noqa: E402 (after the clocks start, in both modes alike)
import json  # noqa: E402
import sys  # noqa: E402


class Context:
    """The parts of Lambda's context object a handler may read."""

    def __init__(self, name: str, timeout_seconds: float, memory_mb: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "cold"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _full_collections() -> int:
    return gc.get_stats()[-1]["collections"]


def _handler_calls(spec: dict) -> list:
    import importlib

    module_name, function_name = spec["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)

    def call(event: dict) -> dict:
        result = handler(event, Context(spec["function"], spec["timeout_seconds"], spec["memory_mb"]))
        if "statusCode" in result:
            return {"status": result["statusCode"]}
        return {"failures": len(result.get("batchItemFailures") or [])}

    return [lambda event=event: call(event) for event in spec["events"]]


def _floor_calls(spec: dict) -> list:
    import boto3

    if spec.get("jinja"):
        from jinja2 import Environment, FileSystemLoader

        environment = Environment(loader=FileSystemLoader("templates"), autoescape=True)
        for name in spec["templates"]:
            environment.get_template(name)
    client = boto3.client("dynamodb")
    method = getattr(client, spec["method"])

    def call(params: dict) -> dict:
        return {"status": method(**params)["ResponseMetadata"]["HTTPStatusCode"]}

    return [lambda params=params: call(params) for params in spec["params"]]


def _timed(call) -> tuple:
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, outcome


def run(spec: dict) -> dict:
    """Do what ``spec`` says and time each phase; returns the figures and what the first call answered."""
    calls = _handler_calls(spec) if spec["mode"] == "handler" else _floor_calls(spec)
    init_ms, init_cpu_ms = (time.perf_counter() - T0) * 1000, (time.process_time() - CPU0) * 1000
    collections = _full_collections()
    first_ms, first_cpu_ms, outcome = _timed(calls[0])
    first_full_collections = _full_collections() - collections
    warm = [_timed(call) for call in calls[1:]]
    outcomes = [outcome] + [w[2] for w in warm]
    return {
        "init_ms": init_ms,
        "init_cpu_ms": init_cpu_ms,
        "first_ms": first_ms,
        "first_cpu_ms": first_cpu_ms,
        "first_full_collections": first_full_collections,
        "warm_ms": sorted(w[0] for w in warm),
        "warm_cpu_ms": sorted(w[1] for w in warm),
        "total_ms": init_ms + first_ms,
        "cpu_ms": init_cpu_ms + first_cpu_ms,
        "outcomes": outcomes,
        "botocore_imported": "botocore" in sys.modules,
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as spec_file:
        figures = run(json.load(spec_file))
    sys.stdout.write("BENCH-RESULT " + json.dumps(figures) + "\n")

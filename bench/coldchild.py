"""The fresh interpreter of one cold-start run (run as ``python -c <this source> <spec.json>``, never imported).

``handler`` mode imports a function's handler and serves its first request, as Lambda's init and first invoke
do; ``floor`` mode only creates a boto3 DynamoDB client and makes the same DynamoDB call. Both start their clock
at the first line, so the interpreter's own start-up (the same for both) is left out of these figures.
The result is one line on stdout: ``BENCH-RESULT {json}``.
"""

import time

T0 = time.perf_counter()
CPU0 = time.process_time()

import json  # noqa: E402 (after the clock starts, in both modes alike)
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


def run(spec: dict) -> dict:
    """Do what ``spec`` says and time it; returns the figures and what the call answered."""
    if spec["mode"] == "handler":
        import importlib

        module_name, function_name = spec["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
        t_init = time.perf_counter()
        context = Context(spec["function"], spec["timeout_seconds"], spec["memory_mb"])
        result = handler(spec["event"], context)
        t_done = time.perf_counter()
        if "statusCode" in result:
            outcome = {"status": result["statusCode"]}
        else:
            outcome = {"failures": len(result.get("batchItemFailures") or [])}
    else:
        import boto3

        client = boto3.client("dynamodb")
        t_init = time.perf_counter()
        response = getattr(client, spec["method"])(**spec["params"])
        t_done = time.perf_counter()
        outcome = {"status": response["ResponseMetadata"]["HTTPStatusCode"]}
    cpu_done = time.process_time()
    return {
        "cpu_ms": (cpu_done - CPU0) * 1000,
        "init_ms": (t_init - T0) * 1000,
        "first_ms": (t_done - t_init) * 1000,
        "total_ms": (t_done - T0) * 1000,
        **outcome,
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as spec_file:
        figures = run(json.load(spec_file))
    sys.stdout.write("BENCH-RESULT " + json.dumps(figures) + "\n")

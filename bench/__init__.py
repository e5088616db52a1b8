"""tag-counter's benchmarks: cold start, warm overhead, DynamoDB round trips and capacity, package sizes,
local-site throughput and stream lag, and a cost model, each figure printed beside its goal.

Run ``./dev bench`` (``python -m bench``; ``--help`` lists the options). The run writes ``BENCHMARKS.md`` and
exits non-zero when a page or the stream processor makes more DynamoDB round trips than its design allows.
"""

"""bench.sweep at a tiny size: a real site sweeps expired markers while a page is read, and it is reported."""

from __future__ import annotations

from bench import sweep
from bench.section import MET, NOT_MET


def test_a_sweep_over_expired_markers_is_measured_and_reported() -> None:
    result = sweep.measure(200, 300)
    assert (result.tags, result.markers, result.deleted) == (200, 300, 300)
    assert result.sweep_ms > 0 and result.reads > 0 and result.max_read_ms > 0
    slowest, length = sweep.rows(result)
    assert slowest.goal == "<= 50 ms" and length.value.endswith("300 of 500")
    assert "300 expired visitor markers" in " ".join(sweep.markdown(result))
    # the goal is on the slowest read during the sweep
    assert sweep.rows(sweep.Sweep(1, 1, 1, 10.0, 49.0, 5.0, 3))[0].status == MET
    assert sweep.rows(sweep.Sweep(1, 1, 1, 10.0, 51.0, 5.0, 3))[0].status == NOT_MET

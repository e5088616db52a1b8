"""bench.siterestart at a tiny size: it restarts a real site on saved tags and reports what it measured."""

from __future__ import annotations

from bench import siterestart
from bench.section import NO_GOAL, NOT_MET, MET


def test_a_restart_on_saved_tags_is_measured_and_reported() -> None:
    result = siterestart.measure(40)
    assert result.tags == 40 and result.seconds > 0 and result.resident_mb > 0
    start, memory = siterestart.rows(result)
    assert start.value.endswith("s on 40 saved tags") and start.goal == NO_GOAL and start.status == NO_GOAL
    assert "40 saved tags" in " ".join(siterestart.markdown(result))
    # At the full size the goal applies, either way
    full = siterestart.Restart(siterestart.FULL_TAGS, 4.0, 500.0)
    assert siterestart.rows(full)[0].status == MET
    assert siterestart.rows(siterestart.Restart(siterestart.FULL_TAGS, 6.0, 500.0))[0].status == NOT_MET

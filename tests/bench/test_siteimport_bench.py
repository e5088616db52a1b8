"""bench.siteimport at a tiny size: the operator command imports into a real local site, and it is reported."""

from __future__ import annotations

from bench import siteimport
from bench.section import MET, NOT_MET


def test_an_import_into_the_local_site_is_measured_and_reported() -> None:
    result = siteimport.measure(30)
    assert result.rows == 30 and result.seconds > 0 and result.per_second > 0
    assert result.site_cpu_ms > 0 and result.command_cpu_ms > 0
    rate, cpu = siteimport.rows(result)
    assert rate.value.endswith("rows/s, 30 new tags") and rate.goal == ">= 1,000 rows/s"
    assert "of 30 new tags" in " ".join(siteimport.markdown(result))
    assert siteimport.rows(siteimport.Import(2_000, 1.9, 1.0, 1.0))[0].status == MET
    assert siteimport.rows(siteimport.Import(2_000, 2.1, 1.0, 1.0))[0].status == NOT_MET


def test_a_failed_import_is_reported_not_measured(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    failed = subprocess.CompletedProcess(args=[], returncode=6, stdout="", stderr="Traceback: it broke")
    monkeypatch.setattr(siteimport.subprocess, "run", lambda *args, **kwargs: failed)
    try:
        siteimport.measure(3)
    except RuntimeError as error:
        assert "exited 6" in str(error) and "it broke" in str(error)
    else:
        raise AssertionError("a failed import was measured")

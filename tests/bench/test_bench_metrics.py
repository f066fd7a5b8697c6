"""The metrics benchmark's DuckDB twin: every number an endpoint answers is checked, and a
toy run on SQLite finds DuckDB answering all of them alike."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from bench import QUICK
from bench.metrics import differences, numbers
from bench.runner import run_all
from metrics.definitions import METRICS

ANSWER = {"count": 10, "value": 0.5,
          "stats": {"met": 5, "by_clock": {"accept": 0.5, "first_touch": None},
                    "by_reason": [{"reason": "No Budget", "count": 10, "share": 1.0}]}}


def test_differences_name_each_number_that_differs_or_is_missing() -> None:
    duck = {"count": 10, "value": 0.5 + 1e-15,
            "stats": {"met": 6, "by_clock": {"accept": 0.5},
                      "by_reason": [{"reason": "Competitor", "count": 10, "share": 1.0}]}}
    assert differences(ANSWER, duck) == [
        "stats.met 5 vs 6", "stats.by_clock.first_touch null vs missing",
        "stats.by_reason[0].reason No Budget vs Competitor"]
    assert differences(ANSWER, ANSWER) == []
    assert numbers(ANSWER) == 7


def test_toy_metrics_run_agrees_with_duckdb_on_every_number(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    toy = replace(QUICK, name="toy", metric_persons=2_000, metric_opportunities=400,
                  metric_requests=2)
    rows = run_all(quick=True, only=["metrics"], size=toy, results_path=None,
                   console=Console(file=(tmp_path / "log.txt").open("w"), width=160),
                   use_postgres=False)
    twins = [r for r in rows if r.vs is not None]
    assert len(twins) == len(METRICS), [r.note for r in rows]
    for row in twins:
        assert row.note and "numbers agree with DuckDB" in row.note, (row.name, row.note)
        assert "DuckDB headline only:" in row.note and "differs" not in row.note

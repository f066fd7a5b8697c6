"""`truce bench` end to end at toy sizes on SQLite: the runner, two benchmarks, the JSON shape.

No timing is asserted: the figures only mean something on a quiet machine at real sizes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from bench import QUICK
from bench.runner import run_all

TOY = replace(QUICK, name="toy", handoffs=400, persons=300, python_sample=50)


def test_toy_run_writes_the_contract_shape(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    rows = run_all(quick=True, only=["sla_scan", "definition"], size=TOY, results_path=out,
                   console=Console(file=(tmp_path / "log.txt").open("w"), width=160),
                   use_postgres=False)
    assert rows and all(r.value is not None for r in rows), [r.note for r in rows]
    results = json.loads(out.read_text())
    assert set(results) == {r.name for r in rows}
    assert any(name.startswith("sla.scan_") for name in results)
    assert "definition.persons_per_second" in results
    for entry in results.values():
        assert {"value", "unit", "vs"} <= set(entry)
        assert isinstance(entry["value"], int | float) and entry["value"] > 0
        assert isinstance(entry["unit"], str) and entry["unit"]
        assert set(entry["vs"]) == {"name", "value", "ratio"}
        assert entry["vs"]["value"] > 0 and entry["vs"]["ratio"] > 0
    evaluated = next(e for n, e in results.items() if n.startswith("definition.evaluate_"))
    assert "agree" in evaluated["note"] and "DISAGREE" not in evaluated["note"]


def test_cpu_ceiling_spreads_every_cpu_second_of_the_run_over_the_cores(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import CpuSpent
    from bench.sync import cpu_ceiling

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    # 1,000 rows: Truce 0.4 s, the sandbox 0.2 s, the database 0.4 s -> 1 ms a row, 2 cores
    full = {"cpu_seconds": 0.4, "cpu": CpuSpent(here=0.2, server=0.4)}
    fetch = {"cpu_seconds": 0.1, "cpu": CpuSpent(here=0.2, server=None)}
    dlt = {"cpu_seconds": 0.8, "cpu": CpuSpent(here=0.2, server=0.1)}
    row = cpu_ceiling("sync.x", 1_000, full, fetch, dlt, dlt_rate=500.0)
    assert row.value == 2_000
    assert row.vs is not None and row.vs.value == 1_500 and row.vs.ratio == 2_000 / 1_500
    assert "Truce 400 + 200 + 400" in (row.note or "")
    assert "fetch-only 100 + 200;" in (row.note or "")
    assert "dlt 800 + 200 + 100" in (row.note or "")

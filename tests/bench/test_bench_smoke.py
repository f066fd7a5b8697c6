"""`truce bench` end to end at toy sizes on SQLite: the runner, two benchmarks, the JSON shape.

No timing is asserted: the figures only mean something on a quiet machine at real sizes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

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

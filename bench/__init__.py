"""Benchmarks behind `truce bench`: every figure is a ratio to a baseline measured in the same run.

These machines are shared and noisy, so an absolute time alone means little; each row pairs
Truce's figure with a comparison measured minutes apart on the same data, and the ratio is
what to watch. Each benchmark module exposes ``run(size, ctx) -> list[Row]``.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Versus:
    """The comparison figure: what it is, its value, and Truce's value divided by it."""

    name: str
    value: float | None
    ratio: float | None


@dataclass(frozen=True)
class Row:
    """One line of the table and one entry of ``bench/results.json``."""

    name: str
    value: float | None
    unit: str
    vs: Versus | None = None
    aim: str | None = None
    met: bool | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": _round(self.value), "unit": self.unit,
                               "vs": None if self.vs is None else {
                                   "name": self.vs.name, "value": _round(self.vs.value),
                                   "ratio": _round(self.vs.ratio)}}
        if self.aim is not None:
            out["aim"] = self.aim
            out["met"] = self.met
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Size:
    """How much data each benchmark generates; ``quick`` must finish in minutes on 2 cores."""

    name: str
    sync_people: int  # sandbox people for the sync benchmark (~0.55 contacts, ~0.8 leads each)
    sync_people_small: int  # a second, smaller world: peak RSS against data size
    handoffs: int  # open handoffs (two clocks each) for the SLA scan
    persons: int  # persons for the definition evaluation
    python_sample: int  # persons judged by the Python evaluator (per-person cost)
    metric_persons: int
    metric_opportunities: int
    # requests per metric endpoint for its p95: of 10, the p95 is all but the slowest (the
    # first call, which compiles the statements), so the full size makes 30
    metric_requests: int
    api_seconds: float  # load-generator duration per target
    api_connections: int
    extra: dict[str, Any] = field(default_factory=dict)


QUICK = Size(name="quick", sync_people=6_000, sync_people_small=1_500, handoffs=20_000,
             persons=20_000, python_sample=2_000, metric_persons=20_000,
             metric_opportunities=4_000, metric_requests=20, api_seconds=5.0,
             api_connections=16)
FULL = Size(name="full", sync_people=100_000, sync_people_small=25_000, handoffs=1_000_000,
            persons=1_000_000, python_sample=20_000, metric_persons=1_000_000,
            metric_opportunities=200_000, metric_requests=30, api_seconds=20.0,
            api_connections=32)


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``, or None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    Linux's ``VmHWM`` first: ``ru_maxrss`` survives ``exec``, so a child spawned by a large
    parent would report the parent's size as its own peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_cpu_seconds() -> float:
    """CPU seconds of this process's threads and of the children it has waited for (dlt's
    normalising workers, when it starts any)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def server_cpu_seconds(name: str = "postgres") -> float | None:
    """CPU seconds all local processes called ``name`` have used so far; None without psutil
    or such a process. A database server's backends come and go: one that has ended is
    counted in its parent's children's times (PostgreSQL's postmaster waits for them)."""
    try:
        import psutil
    except ImportError:
        return None
    total, seen = 0.0, False
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info.get("cpu_times")
        if proc.info.get("name") == name and times is not None:
            total += times.user + times.system + times.children_user + times.children_system
            seen = True
    return total if seen else None


@dataclass(frozen=True)
class CpuSpent:
    """CPU seconds spent between two readings: by this process (the benchmark's sandbox
    CRMs live in it) and by the local database server (None when not measured)."""

    here: float
    server: float | None


class CpuMeter:
    """Readings of this process's and the database server's CPU, to split a run's cost."""

    def __init__(self, server: bool) -> None:
        self.server = server
        self._mark = self._read()

    def _read(self) -> tuple[float, float | None]:
        return time.process_time(), server_cpu_seconds() if self.server else None

    def lap(self) -> CpuSpent:
        """What was spent since the last reading (or since the meter started)."""
        here, server = self._read()
        spent = CpuSpent(here - self._mark[0], None if server is None or self._mark[1] is None
                         else server - self._mark[1])
        self._mark = (here, server)
        return spent


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yield a one-element list that holds the elapsed seconds once the block ends."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    if abs(value) >= 100:
        return round(value, 1)
    return round(value, 4)

"""Headline metrics, SLA clock states and sync runs as Prometheus gauges, read at scrape time.

Values are computed by the same registry the API serves (last 30 days), cached for a minute
so frequent scrapes do not rerun every population query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from metrics.definitions import METRICS
from metrics.query import MetricQuery
from service.db import utcnow
from service.handoffs.models import SlaClock
from service.sync.models import SyncRun

log = logging.getLogger(__name__)
WINDOW = timedelta(days=30)
CACHE_SECONDS = 60.0

Sample = tuple[str, dict[str, str], float]


class TruceCollector(Collector):
    """Exports ``truce_metric_value``, ``truce_sla_clocks`` and ``truce_sync_runs_total``."""

    def __init__(self, engine: Engine, *, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Sample]] | None = None

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        families = {
            "truce_metric_value": GaugeMetricFamily(
                "truce_metric_value", "Shared metric headline over the last 30 days",
                labels=["metric"]),
            "truce_sla_clocks": GaugeMetricFamily(
                "truce_sla_clocks", "SLA clocks by state", labels=["state"]),
            "truce_sync_runs_total": GaugeMetricFamily(
                "truce_sync_runs_total", "Sync runs recorded, by source and status",
                labels=["source", "status"]),
        }
        for family, labels, value in self._samples():
            families[family].add_metric(list(labels.values()), value)
        yield from families.values()

    def _samples(self) -> list[Sample]:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, self._compute())
            return self._cached[1]

    def _compute(self) -> list[Sample]:
        samples: list[Sample] = []
        end = utcnow()
        with Session(self.engine) as session:
            for name, definition in METRICS.items():
                try:
                    found = definition.compute(MetricQuery(session=session, start=end - WINDOW,
                                                           end=end, now=end))
                except Exception:  # a broken metric must not take the whole scrape down
                    log.exception("metric %s failed at scrape time", name)
                    session.rollback()
                    continue
                if found.result.value is not None and found.result.count:
                    samples.append(("truce_metric_value", {"metric": name},
                                    float(found.result.value)))
            for state, count in session.exec(
                    select(SlaClock.state, func.count()).group_by(SlaClock.state)):
                samples.append(("truce_sla_clocks", {"state": state}, float(count)))
            for source, status, count in session.exec(
                    select(SyncRun.source, SyncRun.status, func.count())
                    .group_by(SyncRun.source, SyncRun.status)):
                samples.append(("truce_sync_runs_total", {"source": source, "status": status},
                                float(count)))
        return samples


def register_gauges(registry: CollectorRegistry, engine: Engine) -> TruceCollector:
    """Add the collector to an app's registry (``app.state.metrics.registry``)."""
    collector = TruceCollector(engine)
    registry.register(collector)
    return collector

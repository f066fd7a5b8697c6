"""The shared metrics, each defined once: name, unit, population, headline and computation.

Both teams are judged by these; the registry is what the API lists and what the dashboard,
Prometheus and the alignment evidence read, so a metric never has two definitions. A metric's
computation comes in two forms over the same formulas, found by one name: ``compute`` (in
``metrics.headlines``) answers from database aggregates and is what the API serves; ``records``
(in ``metrics.compute``) fetches every record counted, for the population endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metrics import compute as by_records
from metrics import headlines
from metrics.query import GROUPINGS, GroupBy, MetricAnswer, MetricQuery

Compute = Callable[[MetricQuery], MetricAnswer]


@dataclass(frozen=True)
class MetricDef:
    name: str
    unit: str
    population: str
    headline: str
    computation: str  # the function's name in ``headlines`` and in ``compute``
    groupings: tuple[GroupBy, ...] = GROUPINGS

    @property
    def compute(self) -> Compute:
        """The answer from aggregates: counts, sums and histograms the database groups."""
        found: Compute = getattr(headlines, self.computation)
        return found

    @property
    def records(self) -> Compute:
        """The same answer over every record counted, which it then lists."""
        found: Compute = getattr(by_records, self.computation)
        return found


NO_GROUPS: tuple[GroupBy, ...] = ()  # spend is not attributed to sources, segments or owners

_DEFS = (
    MetricDef("lead-acceptance-rate", "ratio", "handoffs decided in the window",
              "accepted ÷ (accepted + rejected); pending handoffs shown apart",
              "lead_acceptance_rate"),
    MetricDef("rejection-reasons", "count", "rejections in the window",
              "number of rejections; groups by reason", "rejection_reasons"),
    MetricDef("funnel-conversion", "ratio", "MQLs created in the window (cohort)",
              "MQL → won; stats per step (MQL → SAL → SQL → won)", "funnel_conversion"),
    MetricDef("time-to-accept", "business minutes", "accept clocks stopped in the window",
              "median business minutes; stats also in calendar minutes",
              "time_to_accept"),
    MetricDef("time-to-first-touch", "business minutes",
              "first-touch clocks stopped in the window",
              "median business minutes; stats also in calendar minutes",
              "time_to_first_touch"),
    MetricDef("sla-compliance", "ratio", "SLA clocks due in the window",
              "met ÷ (met + breached); a running clock past due counts as breached",
              "sla_compliance"),
    MetricDef("sales-cycle-length", "days", "opportunities won with a close date in the window",
              "median days from created date to close date (UTC dates)",
              "sales_cycle_length"),
    MetricDef("win-rate", "ratio", "opportunities closed in the window",
              "won ÷ (won + lost) by count; stats.by_amount by amount", "win_rate"),
    MetricDef("cost-of-sales", "ratio", "spend and won deals in the window",
              "(sales + marketing spend) ÷ won revenue; spend prorated by days",
              "cost_of_sales", NO_GROUPS),
    MetricDef("cac", "currency", "spend and new customers in the window",
              "spend ÷ new customers (first won deal in the window)", "cac", NO_GROUPS),
    MetricDef("cost-per-mql", "currency", "marketing spend and MQLs in the window",
              "marketing spend ÷ MQLs", "cost_per_mql", NO_GROUPS),
    MetricDef("pipeline-velocity", "currency per day", "open opportunities as of the window's "
              "end; deals closed in the window for rate, size and cycle",
              "open opportunities × win rate × mean won amount ÷ median cycle days",
              "pipeline_velocity"),
    MetricDef("marketing-sourced-share", "ratio", "wins in the window",
              "share of won revenue whose person was an MQL before the opportunity",
              "marketing_sourced_share"),
    MetricDef("forecast-accuracy", "ratio", "forecasts for periods ending in the window",
              "mean of 1 − |actual − forecast| ÷ actual", "forecast_accuracy",
              ("segment", "team")),
    MetricDef("mql-commitment-attainment", "ratio", "commitments for periods in the window",
              "MQLs delivered ÷ MQLs committed", "mql_commitment_attainment",
              ("segment",)),
)

METRICS: dict[str, MetricDef] = {d.name: d for d in _DEFS}

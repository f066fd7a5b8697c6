"""Placing the organisation on the alignment spectrum from the survey and observed evidence.

The survey says how the relationship feels; the evidence says what Truce can see in the data.
Both are shown, and ``PLACEMENT_RULE`` says how they combine, so nobody has to guess why the
answer is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.alignment.statements import STAGES, Stage

# Thresholds an indicator must reach to count as met; each supports one stage.
MIN_SLA_POLICIES = 1
MIN_DECISIONS_WITH_REASON = 0.9
MIN_SLA_COMPLIANCE = 0.8
MIN_VOCABULARY_MAPPED = 0.9
MIN_SHARED_METRICS_QUERIED = 3
MIN_FORECAST_ACCURACY = 0.85
MAX_DISPUTE_RATE = 0.05

PLACEMENT_RULE = (
    "Evidence sets the ceiling and the survey reads the relationship. The evidence stage is the "
    "highest stage whose indicators, and those of every stage below it, are all met. Without "
    "an active, jointly approved lead definition and an SLA in force you are Undefined, "
    "whatever the survey says. Otherwise you are placed at the survey's stage, but at most one "
    "stage above the evidence stage. With no survey responses, the evidence alone places you."
)


@dataclass(frozen=True)
class EvidenceFacts:
    """Plain numbers the data layer gathers; None means there is nothing to measure yet.

    ``shared_metrics_queried_30d`` counts distinct shared metrics someone read in the last 30
    days; ``rejection_dispute_rate`` is disputed rejections over rejections.
    """

    active_definition_jointly_approved: bool
    sla_policies_in_force: int
    decisions_with_reason_share: float | None
    sla_compliance: float | None
    crm_status_vocabulary_mapped_share: float | None
    shared_metrics_queried_30d: int
    forecast_accuracy: float | None
    rejection_dispute_rate: float | None
    marketing_sourced_share_measured: bool


@dataclass(frozen=True)
class Indicator:
    """One observed fact with its threshold and the stage it supports."""

    indicator: str
    value: float | bool | None
    threshold: float | bool
    supports: Stage
    met: bool
    detail: str


@dataclass(frozen=True)
class Placement:
    """The final stage beside both readings it came from, and the rule that combined them."""

    stage: Stage
    survey_stage: Stage | None
    evidence_stage: Stage
    rule: str


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _at_least(name: str, value: float | None, threshold: float, supports: Stage,
              what: str) -> Indicator:
    if value is None:
        detail = f"{what}: nothing to measure yet (needs at least {_pct(threshold)})"
        return Indicator(name, None, threshold, supports, False, detail)
    detail = f"{what}: {_pct(value)} (needs at least {_pct(threshold)})"
    return Indicator(name, value, threshold, supports, value >= threshold, detail)


def _flag(name: str, value: bool, supports: Stage, yes: str, no: str) -> Indicator:
    return Indicator(name, value, True, supports, value is True, yes if value else no)


def evidence_indicators(facts: EvidenceFacts) -> list[Indicator]:
    """The observed indicators, Defined first, each with value, threshold and verdict."""
    disputes = facts.rejection_dispute_rate
    if disputes is None:
        dispute = Indicator("rejection_dispute_rate", None, MAX_DISPUTE_RATE, Stage.INTEGRATED,
                            False, "Disputed rejections: no rejections to measure yet "
                            f"(needs at most {_pct(MAX_DISPUTE_RATE)})")
    else:
        dispute = Indicator("rejection_dispute_rate", disputes, MAX_DISPUTE_RATE,
                            Stage.INTEGRATED, disputes <= MAX_DISPUTE_RATE,
                            f"Disputed rejections: {_pct(disputes)} "
                            f"(needs at most {_pct(MAX_DISPUTE_RATE)})")
    policies = facts.sla_policies_in_force
    queried = facts.shared_metrics_queried_30d
    return [
        _flag("definition_jointly_approved", facts.active_definition_jointly_approved,
              Stage.DEFINED,
              "An active lead definition was approved by both Sales and Marketing",
              "No active lead definition approved by both Sales and Marketing"),
        Indicator("sla_policies_in_force", policies, MIN_SLA_POLICIES, Stage.DEFINED,
                  policies >= MIN_SLA_POLICIES,
                  f"SLA policies in force: {policies} (needs at least {MIN_SLA_POLICIES})"),
        _at_least("decisions_with_reason_share", facts.decisions_with_reason_share,
                  MIN_DECISIONS_WITH_REASON, Stage.ALIGNED,
                  "Accept/reject decisions that carried a reason"),
        _at_least("sla_compliance", facts.sla_compliance, MIN_SLA_COMPLIANCE, Stage.ALIGNED,
                  "SLA clocks met"),
        _at_least("crm_status_vocabulary_mapped_share", facts.crm_status_vocabulary_mapped_share,
                  MIN_VOCABULARY_MAPPED, Stage.ALIGNED,
                  "CRM lead statuses mapped to the shared funnel stages"),
        Indicator("shared_metrics_queried_30d", queried, MIN_SHARED_METRICS_QUERIED,
                  Stage.INTEGRATED, queried >= MIN_SHARED_METRICS_QUERIED,
                  f"Shared metrics read in the last 30 days: {queried} "
                  f"(needs at least {MIN_SHARED_METRICS_QUERIED})"),
        _at_least("forecast_accuracy", facts.forecast_accuracy, MIN_FORECAST_ACCURACY,
                  Stage.INTEGRATED, "Forecast accuracy"),
        dispute,
        _flag("marketing_sourced_share_measured", facts.marketing_sourced_share_measured,
              Stage.INTEGRATED,
              "Marketing-sourced revenue is measured",
              "Marketing-sourced revenue is not measured yet"),
    ]


def evidence_stage(indicators: list[Indicator]) -> Stage:
    """The highest stage whose indicators, and all below it, are met.

    A stage with no indicators at all is not evidenced: an empty list places you Undefined.
    """
    reached = Stage.UNDEFINED
    for stage in STAGES[1:]:
        own = [item for item in indicators if item.supports == stage]
        if not own or not all(item.met for item in own):
            break
        reached = stage
    return reached


def place(survey_stage: Stage | None, indicators: list[Indicator]) -> Placement:
    """Combine the survey and the evidence by ``PLACEMENT_RULE``."""
    evidenced = evidence_stage(indicators)
    if survey_stage is None:
        stage = evidenced
    elif evidenced == Stage.UNDEFINED:
        stage = Stage.UNDEFINED
    else:
        stage = min(survey_stage, Stage.from_rank(evidenced.rank + 1))
    return Placement(stage=stage, survey_stage=survey_stage, evidence_stage=evidenced,
                     rule=PLACEMENT_RULE)


_NEXT_STEPS: dict[Stage, list[str]] = {
    Stage.UNDEFINED: [
        "Agree written rules of engagement: who does what, and when, at each handoff.",
        "Set clear handoff points, with a follow-up deadline for every lead passed to Sales.",
        "Define together what a lead is, and approve that definition from both sides.",
    ],
    Stage.DEFINED: [
        "Hold regular joint meetings with a fixed agenda and owned action items.",
        "Give people joint assignments and rotate them between the two teams.",
        "Place a trusted marketer with the sales force as a liaison.",
        "Seat the teams near each other where you can.",
        "Make feedback from sellers to Marketing quick and cheap to give.",
    ],
    Stage.ALIGNED: [
        "Put one revenue executive over both Sales and Marketing.",
        "Define the funnel stages jointly, from first interest to closed business.",
        "Split Marketing's work into upstream (market sensing, strategy) and downstream "
        "(campaigns that feed Sales).",
        "Share revenue targets and rewards across both teams.",
        "Judge both teams by one integrated set of metrics.",
    ],
    Stage.INTEGRATED: [],
}

_REASONS_TO_STAY: dict[Stage, list[str]] = {
    Stage.UNDEFINED: [
        "The firm is small and the teams already get along well.",
        "Marketing mainly supports Sales, and that arrangement works.",
    ],
    Stage.DEFINED: [
        "The products are simple and the current roles work.",
        "Clear rules already keep disputes rare.",
    ],
    Stage.ALIGNED: [
        "The sales cycle is short, so deeper integration pays back little.",
        "There is no culture of shared responsibility to build integration on yet.",
    ],
    Stage.INTEGRATED: [],
}


def next_steps(stage: Stage) -> list[str]:
    """What would move the organisation one stage up; nothing at Integrated."""
    return list(_NEXT_STEPS[stage])


def reasons_to_stay(stage: Stage) -> list[str]:
    """When staying at this stage is the sensible choice; none at Integrated, the top."""
    return list(_REASONS_TO_STAY[stage])

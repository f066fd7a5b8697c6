"""The alignment survey, the evidence and the placement, as a team would see them."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.alignment.placement import (
    PLACEMENT_RULE,
    EvidenceFacts,
    Indicator,
    evidence_indicators,
    evidence_stage,
    next_steps,
    place,
    reasons_to_stay,
)
from service.alignment.scoring import (
    SurveyError,
    TeamScore,
    band,
    score,
    survey_stage,
    survey_summary,
    team_summary,
    validate_answers,
)
from service.alignment.statements import STATEMENTS, Stage
from service.errors import Invalid

UNDEFINED, DEFINED, ALIGNED, INTEGRATED = (
    Stage.UNDEFINED, Stage.DEFINED, Stage.ALIGNED, Stage.INTEGRATED
)


def test_twenty_statements_numbered_in_order_with_the_documented_topics() -> None:
    assert [s.number for s in STATEMENTS] == list(range(1, 21))
    assert STATEMENTS[0].topic == "forecast accuracy"
    assert STATEMENTS[6].topic == "common vocabulary"
    assert STATEMENTS[16].topic == "one executive"
    assert len({s.text for s in STATEMENTS}) == 20
    assert all(isinstance(s.stage_hint, Stage) for s in STATEMENTS)


def test_stages_order_by_position_not_alphabet() -> None:
    assert sorted([INTEGRATED, ALIGNED, UNDEFINED, DEFINED]) == list(Stage)
    assert list(Stage) == [UNDEFINED, DEFINED, ALIGNED, INTEGRATED]
    assert max(ALIGNED, DEFINED) == ALIGNED and min(INTEGRATED, ALIGNED) == ALIGNED
    assert UNDEFINED.above() == DEFINED and INTEGRATED.above() is None
    assert UNDEFINED.below() is None and INTEGRATED.below() == ALIGNED
    assert Stage.from_rank(7) == INTEGRATED and Stage.from_rank(-1) == UNDEFINED
    assert ALIGNED == "Aligned"


@pytest.mark.parametrize(
    ("total", "stage"),
    [
        (20, UNDEFINED), (39, UNDEFINED), (40, DEFINED), (59, DEFINED), (60, ALIGNED),
        (79, ALIGNED), (80, INTEGRATED), (100, INTEGRATED), (59.5, DEFINED),
    ],
)
def test_band_edges(total: float, stage: Stage) -> None:
    assert band(total) == stage


@pytest.mark.parametrize("total", [19, 101, 19.9, float("nan"), True])
def test_band_rejects_scores_outside_the_scale(total: float) -> None:
    with pytest.raises(ValueError):
        band(total)


def test_score_totals_a_valid_response() -> None:
    assert score([1] * 20) == 20
    assert score([5] * 20) == 100
    assert score([3] * 10 + [4] * 10) == 70


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ([3] * 19, "answers"),
        ([3] * 21, "answers"),
        ("3" * 20, "answers"),
        (None, "answers"),
        ([3, 3, 3, 0] + [3] * 16, "answers[3]"),
        ([3] * 19 + [6], "answers[19]"),
        ([3, "4"] + [3] * 18, "answers[1]"),
        ([3] * 5 + [True] + [3] * 14, "answers[5]"),
        ([3] * 7 + [3.0] + [3] * 12, "answers[7]"),
    ],
)
def test_invalid_answers_name_the_offending_field(answers: object, field: str) -> None:
    with pytest.raises(SurveyError) as caught:
        validate_answers(answers)
    assert caught.value.field == field
    assert field in caught.value.message
    assert isinstance(caught.value, Invalid) and caught.value.status == 422


def test_error_message_names_the_statement_and_the_bad_value() -> None:
    with pytest.raises(SurveyError) as caught:
        validate_answers([3] * 19 + [6])
    assert "statement 20" in caught.value.message and "6" in caught.value.message


@given(st.lists(st.integers(1, 5), min_size=20, max_size=20))
def test_any_valid_response_scores_within_a_band(answers: list[int]) -> None:
    total = score(answers)
    assert 20 <= total <= 100
    assert band(total) in list(Stage)


def test_team_summary_is_the_mean_total_rounded_to_one_decimal() -> None:
    team = team_summary([[2] * 20, [3] * 20, [3] * 19 + [4]])
    assert team == TeamScore(score=53.7, stage=DEFINED, responses=3)


def test_team_with_no_responses_is_null_not_zero() -> None:
    assert team_summary([]) == TeamScore(score=None, stage=None, responses=0)


def test_team_summary_points_at_the_bad_response() -> None:
    with pytest.raises(SurveyError) as caught:
        team_summary([[3] * 20, [3] * 2 + [9] + [3] * 17])
    assert caught.value.field == "responses[1].answers[2]"


def test_survey_summary_reports_the_gap_between_the_teams() -> None:
    sales = team_summary([[2] * 20])  # 40, Defined
    marketing = team_summary([[4] * 20, [3] * 20])  # 70, Aligned
    summary = survey_summary(sales, marketing)
    assert summary == {
        "sales": {"score": 40.0, "stage": DEFINED, "responses": 1},
        "marketing": {"score": 70.0, "stage": ALIGNED, "responses": 2},
        "gap": 30.0,
    }
    assert survey_stage(sales, marketing) == DEFINED


def test_gap_is_null_when_a_team_has_not_answered() -> None:
    summary = survey_summary(team_summary([]), team_summary([[4] * 20]))
    assert summary["gap"] is None
    assert survey_stage(team_summary([]), team_summary([[4] * 20])) == INTEGRATED
    assert survey_stage(team_summary([]), team_summary([])) is None


def facts(**changes: object) -> EvidenceFacts:
    """Evidence that meets every threshold, with some facts changed."""
    full = EvidenceFacts(
        active_definition_jointly_approved=True,
        sla_policies_in_force=2,
        decisions_with_reason_share=0.95,
        sla_compliance=0.85,
        crm_status_vocabulary_mapped_share=1.0,
        shared_metrics_queried_30d=6,
        forecast_accuracy=0.9,
        rejection_dispute_rate=0.02,
        marketing_sourced_share_measured=True,
    )
    return dataclasses.replace(full, **changes)


def by_name(indicators: list[Indicator]) -> dict[str, Indicator]:
    return {item.indicator: item for item in indicators}


def test_indicators_show_value_threshold_and_supported_stage() -> None:
    items = by_name(evidence_indicators(facts(sla_compliance=0.79)))
    compliance = items["sla_compliance"]
    assert (compliance.value, compliance.threshold, compliance.supports) == (0.79, 0.8, ALIGNED)
    assert compliance.met is False
    assert "79%" in compliance.detail and "80%" in compliance.detail
    assert items["definition_jointly_approved"].supports == DEFINED
    assert items["forecast_accuracy"].supports == INTEGRATED
    assert {item.supports for item in items.values()} == {DEFINED, ALIGNED, INTEGRATED}


def test_thresholds_are_inclusive_and_disputes_are_a_ceiling() -> None:
    items = by_name(evidence_indicators(facts(
        decisions_with_reason_share=0.9, forecast_accuracy=0.85, rejection_dispute_rate=0.05)))
    assert items["decisions_with_reason_share"].met
    assert items["forecast_accuracy"].met
    assert items["rejection_dispute_rate"].met
    items = by_name(evidence_indicators(facts(rejection_dispute_rate=0.06)))
    assert not items["rejection_dispute_rate"].met


def test_nothing_to_measure_is_not_met() -> None:
    items = by_name(evidence_indicators(facts(sla_compliance=None, forecast_accuracy=None)))
    assert items["sla_compliance"].value is None and not items["sla_compliance"].met
    assert not items["forecast_accuracy"].met


@pytest.mark.parametrize(
    ("changes", "stage"),
    [
        ({}, INTEGRATED),
        ({"forecast_accuracy": 0.5}, ALIGNED),
        ({"sla_compliance": 0.5}, DEFINED),
        ({"sla_compliance": 0.5, "forecast_accuracy": 0.5}, DEFINED),  # a gap below stops the climb
        ({"sla_policies_in_force": 0}, UNDEFINED),
        ({"active_definition_jointly_approved": False}, UNDEFINED),
    ],
)
def test_evidence_stage_needs_every_indicator_up_to_it(changes: dict, stage: Stage) -> None:
    assert evidence_stage(evidence_indicators(facts(**changes))) == stage


def test_no_indicators_is_no_evidence() -> None:
    assert evidence_stage([]) == UNDEFINED


def test_survey_ahead_of_the_evidence_is_capped_one_stage_above_it() -> None:
    defined_only = evidence_indicators(facts(sla_compliance=0.5))
    placement = place(INTEGRATED, defined_only)
    assert placement.stage == ALIGNED
    assert (placement.survey_stage, placement.evidence_stage) == (INTEGRATED, DEFINED)
    assert placement.rule == PLACEMENT_RULE


def test_survey_within_reach_of_the_evidence_stands() -> None:
    assert place(ALIGNED, evidence_indicators(facts(sla_compliance=0.5))).stage == ALIGNED
    assert place(DEFINED, evidence_indicators(facts())).stage == DEFINED


def test_without_a_survey_the_evidence_alone_places() -> None:
    assert place(None, evidence_indicators(facts(forecast_accuracy=0.1))).stage == ALIGNED
    assert place(None, evidence_indicators(facts())).stage == INTEGRATED


def test_without_evidence_of_defined_you_are_undefined_whatever_the_survey_says() -> None:
    no_definition = facts(active_definition_jointly_approved=False)
    placement = place(INTEGRATED, evidence_indicators(no_definition))
    assert placement.stage == UNDEFINED and placement.evidence_stage == UNDEFINED
    assert place(INTEGRATED, []).stage == UNDEFINED


def test_rule_text_states_the_cap_and_the_fallbacks() -> None:
    assert "one stage above" in PLACEMENT_RULE
    assert "no survey" in PLACEMENT_RULE
    assert "Undefined" in PLACEMENT_RULE


@pytest.mark.parametrize("stage", [UNDEFINED, DEFINED, ALIGNED])
def test_every_stage_below_the_top_has_next_steps_and_reasons_to_stay(stage: Stage) -> None:
    assert len(next_steps(stage)) >= 3
    assert len(reasons_to_stay(stage)) >= 1


def test_next_steps_follow_the_advice_for_each_move() -> None:
    assert any("lead" in step.lower() for step in next_steps(UNDEFINED))
    assert any("liaison" in step.lower() for step in next_steps(DEFINED))
    assert any("revenue executive" in step.lower() for step in next_steps(ALIGNED))
    assert next_steps(INTEGRATED) == [] and reasons_to_stay(INTEGRATED) == []


def test_advice_lists_are_copies_callers_cannot_corrupt() -> None:
    next_steps(UNDEFINED).clear()
    assert next_steps(UNDEFINED)

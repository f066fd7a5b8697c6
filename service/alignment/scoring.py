"""Scoring the diagnostic survey: validation, totals, bands and the Sales/Marketing gap.

Each response is twenty ratings from 1 to 5, so a total runs from 20 to 100. Sales and
Marketing are scored apart because the two sides often read the relationship differently;
the gap between them is part of the answer, not noise to average away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from service.alignment.statements import STATEMENTS, Stage
from service.errors import Invalid

ANSWER_COUNT = len(STATEMENTS)
MIN_RATING, MAX_RATING = 1, 5
MIN_SCORE, MAX_SCORE = ANSWER_COUNT * MIN_RATING, ANSWER_COUNT * MAX_RATING

# Lower bound of each band; a score belongs to the highest band whose bound it reaches.
_BANDS: tuple[tuple[int, Stage], ...] = (
    (80, Stage.INTEGRATED),
    (60, Stage.ALIGNED),
    (40, Stage.DEFINED),
    (20, Stage.UNDEFINED),
)


class SurveyError(Invalid):
    """A survey response that breaks the answer rules; ``field`` points at the bad answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


def validate_answers(answers: object) -> list[int]:
    """Return the answers as a list when they are twenty integer ratings of 1 to 5.

    Indexes in error fields count from 0 (``answers[3]`` is statement 4); booleans are
    refused even though Python treats them as integers, since ``true`` is not a rating.
    """
    if isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
        raise SurveyError("answers", f"answers must be a list of {ANSWER_COUNT} ratings")
    if len(answers) != ANSWER_COUNT:
        raise SurveyError(
            "answers",
            f"answers must hold exactly {ANSWER_COUNT} ratings, one per statement; "
            f"got {len(answers)}",
        )
    result: list[int] = []
    for index, answer in enumerate(answers):
        field = f"answers[{index}]"
        where = f"{field} (statement {index + 1})"
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise SurveyError(
                field, f"{where} must be an integer from {MIN_RATING} to {MAX_RATING}, "
                f"got {answer!r}"
            )
        if not MIN_RATING <= answer <= MAX_RATING:
            raise SurveyError(
                field, f"{where} must be from {MIN_RATING} to {MAX_RATING}, got {answer}"
            )
        result.append(answer)
    return result


def score(answers: object) -> int:
    """The total of one valid response, from 20 to 100."""
    return sum(validate_answers(answers))


def band(score: float) -> Stage:
    """The stage a total (or a team's mean total) falls in: 20-39, 40-59, 60-79, 80-100.

    A fractional mean sits in the band of the bound it has reached, so 59.5 is still Defined.
    """
    if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
        raise ValueError(f"score must be a number from {MIN_SCORE} to {MAX_SCORE}")
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise ValueError(f"score must be from {MIN_SCORE} to {MAX_SCORE}, got {score}")
    return next(stage for bound, stage in _BANDS if score >= bound)


@dataclass(frozen=True)
class TeamScore:
    """One team's reading: mean total (1 decimal), its band, and how many people answered."""

    score: float | None
    stage: Stage | None
    responses: int

    def as_dict(self) -> dict[str, object]:
        return {"score": self.score, "stage": self.stage, "responses": self.responses}


def team_summary(responses: Sequence[object]) -> TeamScore:
    """Score a team's responses; no responses gives an explicit null, not a zero score."""
    totals: list[int] = []
    for index, answers in enumerate(responses):
        try:
            totals.append(score(answers))
        except SurveyError as error:
            raise SurveyError(f"responses[{index}].{error.field}", error.message) from error
    if not totals:
        return TeamScore(score=None, stage=None, responses=0)
    mean = round(sum(totals) / len(totals), 1)
    return TeamScore(score=mean, stage=band(mean), responses=len(totals))


class SurveySummary(TypedDict):
    sales: dict[str, object]
    marketing: dict[str, object]
    gap: float | None


def survey_summary(sales: TeamScore, marketing: TeamScore) -> SurveySummary:
    """Both teams side by side; ``gap`` is Marketing's score minus Sales', null if either is."""
    gap = None
    if sales.score is not None and marketing.score is not None:
        gap = round(marketing.score - sales.score, 1)
    return {"sales": sales.as_dict(), "marketing": marketing.as_dict(), "gap": gap}


def survey_stage(sales: TeamScore, marketing: TeamScore) -> Stage | None:
    """The survey's overall stage: the lower of the two teams' stages.

    The relationship is only as aligned as the side that experiences it least; with one
    team's responses only, that team's stage stands; with none, there is no survey stage.
    """
    stages = [team.stage for team in (sales, marketing) if team.stage is not None]
    return min(stages) if stages else None

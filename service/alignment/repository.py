"""Queries about surveys, their responses, placements and metric reads."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.alignment.models import MetricRead, Placement, Survey, SurveyResponse
from service.errors import NotFound
from service.pagination import paginate


def get_survey(session: Session, survey_id: int) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise NotFound(f"no survey {survey_id}")
    return survey


def list_surveys(session: Session, *, limit: int, cursor: str | None
                 ) -> tuple[list[Survey], str | None]:
    """Newest first, so the round people are filling in now is on the first page."""
    return paginate(session, select(Survey), Survey.id, limit=limit, cursor=cursor,
                    descending=True)


def response_counts(session: Session, survey_ids: list[int]) -> dict[int, dict[str, int]]:
    """Responses per survey and team, for the listed surveys only."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if not survey_ids:
        return counts
    rows = session.exec(select(SurveyResponse.survey_id, SurveyResponse.team, func.count())
                        .where(col(SurveyResponse.survey_id).in_(survey_ids))
                        .group_by(col(SurveyResponse.survey_id), col(SurveyResponse.team)))
    for survey_id, team, count in rows:
        counts[survey_id][team] = int(count)
    return counts


def latest_answered_survey(session: Session) -> int | None:
    """The newest survey anyone has answered: the one the placement reads."""
    return session.exec(select(func.max(SurveyResponse.survey_id))).one()


def answers_by_team(session: Session, survey_id: int) -> dict[str, list[list[int]]]:
    found: dict[str, list[list[int]]] = {"sales": [], "marketing": []}
    rows = session.exec(select(SurveyResponse.team, SurveyResponse.answers)
                        .where(SurveyResponse.survey_id == survey_id)
                        .order_by(col(SurveyResponse.id)))
    for team, answers in rows:
        found.setdefault(team, []).append(list(answers))
    return found


def last_placement(session: Session) -> Placement | None:
    return session.exec(select(Placement).order_by(col(Placement.id).desc()).limit(1)).first()


def list_placements(session: Session, *, limit: int, cursor: str | None
                    ) -> tuple[list[Placement], str | None]:
    """Newest first: the current placement, then how it got there."""
    return paginate(session, select(Placement), Placement.id, limit=limit, cursor=cursor,
                    descending=True)


def distinct_metrics_read(session: Session, *, since: datetime) -> int:
    return int(session.exec(select(func.count(func.distinct(MetricRead.metric)))
                            .where(col(MetricRead.at) >= since)).one())

"""Running surveys and placing the organisation; functions add and flush, the caller commits."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert
from sqlmodel import Session

from service.alignment import repository
from service.alignment.evidence import gather_facts
from service.alignment.models import MetricRead, Placement, Survey, SurveyResponse
from service.alignment.placement import (
    PLACEMENT_RULE,
    Indicator,
    evidence_indicators,
    next_steps,
    place,
    reasons_to_stay,
)
from service.alignment.scoring import (
    SurveyError,
    survey_stage,
    survey_summary,
    team_summary,
    validate_answers,
)
from service.auth.service import Principal
from service.db import commit_without_flush, utcnow
from service.errors import Conflict, Invalid

TEAMS = ("sales", "marketing")


def create_survey(session: Session, *, name: str, principal: Principal) -> Survey:
    survey = Survey(name=name, created_by=principal.name)
    session.add(survey)
    session.flush()
    return survey


def close_survey(session: Session, survey_id: int, *, now: datetime | None = None) -> Survey:
    """Stop taking answers; the responses stay and still place the organisation."""
    survey = repository.get_survey(session, survey_id)
    if survey.closed_at is not None:
        raise Conflict(f"survey {survey_id} was closed at {survey.closed_at.isoformat()}")
    survey.closed_at = now or utcnow()
    session.add(survey)
    session.flush()
    return survey


def add_response(session: Session, survey_id: int, *, team: str, answers: object,
                 principal: Principal) -> SurveyResponse:
    """Record one person's ratings in an open survey.

    Errors point at the body (``body.answers.3``) the way request validation does, so a client
    handles both the same way.
    """
    survey = repository.get_survey(session, survey_id)
    if survey.closed_at is not None:
        raise Conflict(f"survey {survey_id} is closed and takes no more responses")
    if team not in TEAMS:
        raise Invalid("team must be sales or marketing", field="body.team")
    try:
        ratings = validate_answers(answers)
    except SurveyError as error:
        field = (error.field or "answers").replace("[", ".").replace("]", "")
        raise Invalid(error.message, field=f"body.{field}") from None
    response = SurveyResponse(survey_id=survey_id, team=team, answers=ratings,
                              score=sum(ratings), respondent=principal.name)
    session.add(response)
    session.flush()
    return response


class ReadLedger:
    """The (metric, key) pairs this process has stored a read of in the current UTC hour.

    The evidence only asks which metrics were read in the last 30 days, so a dashboard that
    polls the same metric every few seconds needs one row an hour, not one per poll: the
    other polls stay read-only (no evidence row, no write to commit). One ledger per app, so
    that apps over different databases (tests) never suppress each other's rows; each worker
    process keeps its own, so a read may be stored once per process and hour.
    """

    def __init__(self) -> None:
        self._hour: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _hour_of(at: datetime) -> datetime:
        return at.replace(minute=0, second=0, microsecond=0)

    def stored(self, metric: str, key_name: str, at: datetime) -> bool:
        with self._lock:
            return self._hour.get((metric, key_name)) == self._hour_of(at)

    def note(self, metric: str, key_name: str, at: datetime) -> None:
        with self._lock:
            self._hour[(metric, key_name)] = self._hour_of(at)


def record_metric_read(session: Session, metric: str, key_name: str, *,
                       at: datetime | None = None, ledger: ReadLedger | None = None) -> bool:
    """Note that a shared metric was read; the metrics routes call this for known metrics.

    With a ``ledger``, a read is stored only when none of that metric by that key was stored
    in the hour (True when it is), and the ledger learns of it once the transaction commits.
    On PostgreSQL the read's transaction does not wait for its commit to reach the disk: a
    crash may forget the last moment's reads (and facts rebuilt in it, which the next read
    rebuilds), which no evidence indicator notices.
    """
    at = at or utcnow()
    if ledger is not None:
        if ledger.stored(metric, key_name, at):
            return False
        event.listen(session, "after_commit",
                     lambda _: ledger.note(metric, key_name, at), once=True)
    commit_without_flush(session)
    # a plain INSERT: the row is never read back, so the ORM's unit of work is not needed
    session.connection().execute(insert(MetricRead.__table__).values(  # type: ignore[attr-defined]
        metric=metric, key_name=key_name, at=at))
    return True


def _indicator(item: Indicator) -> dict[str, Any]:
    return {"indicator": item.indicator, "value": item.value, "threshold": item.threshold,
            "supports": str(item.supports), "met": item.met}


def _team(summary: dict[str, object]) -> dict[str, object]:
    stage = summary["stage"]
    return {**summary, "stage": str(stage) if stage is not None else None}


def current_alignment(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Place the organisation now, and record the placement if it moved since the last one."""
    now = now or utcnow()
    survey_id = repository.latest_answered_survey(session)
    answers = repository.answers_by_team(session, survey_id) if survey_id is not None else {}
    sales = team_summary(answers.get("sales", []))
    marketing = team_summary(answers.get("marketing", []))
    summary = survey_summary(sales, marketing)
    survey = {"sales": _team(summary["sales"]), "marketing": _team(summary["marketing"]),
              "gap": summary["gap"]}
    indicators = evidence_indicators(gather_facts(session, now=now))
    placement = place(survey_stage(sales, marketing), indicators)
    evidence = [_indicator(item) for item in indicators]
    _record_if_moved(session, Placement(
        at=now, stage=str(placement.stage),
        survey_stage=str(placement.survey_stage) if placement.survey_stage else None,
        evidence_stage=str(placement.evidence_stage),
        survey={"survey_id": survey_id, **survey}, evidence=evidence))
    return {
        "stage": str(placement.stage),
        "survey": survey,
        "evidence": evidence,
        "next_steps": next_steps(placement.stage),
        "reasons_to_stay": reasons_to_stay(placement.stage),
        "rule": PLACEMENT_RULE,
        "survey_id": survey_id,
        "computed_at": now,
    }


def _signature(placement: Placement) -> tuple[object, ...]:
    """What counts as a move: any stage, the survey read, or either team's score."""
    survey = placement.survey or {}
    return (placement.stage, placement.survey_stage, placement.evidence_stage,
            survey.get("survey_id"), (survey.get("sales") or {}).get("score"),
            (survey.get("marketing") or {}).get("score"))


def _record_if_moved(session: Session, candidate: Placement) -> None:
    last = repository.last_placement(session)
    if last is not None and _signature(last) == _signature(candidate):
        return
    session.add(candidate)
    session.flush()

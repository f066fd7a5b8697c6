"""The alignment spectrum: the diagnostic survey, the observed evidence and the placement."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from service.alignment import repository, service
from service.alignment.scoring import ANSWER_COUNT, MAX_RATING, MIN_RATING
from service.alignment.statements import STATEMENTS
from service.deps import Editor, SessionDep, Viewer
from service.pagination import CursorParam, Limit, Paginated

router = APIRouter(prefix="/api/v1/alignment", tags=["alignment"])

_ANSWERS_SCHEMA = {"type": "array", "minItems": ANSWER_COUNT, "maxItems": ANSWER_COUNT,
                   "items": {"type": "integer", "minimum": MIN_RATING, "maximum": MAX_RATING}}


class StatementOut(BaseModel):
    number: int
    topic: str
    text: str


class SurveyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Q3 2026 pulse"])


class SurveyOut(BaseModel):
    id: int
    name: str
    opened_at: datetime
    closed_at: datetime | None
    created_by: str
    responses: dict[str, int] = Field(description="Responses so far, per team.")


class ResponseIn(BaseModel):
    team: Literal["sales", "marketing"]
    # Checked by the domain rules, not here, so every bad rating gets the same clear message.
    answers: Any = Field(json_schema_extra=_ANSWERS_SCHEMA,
                         description=f"{ANSWER_COUNT} ratings from {MIN_RATING} (strongly "
                         f"disagree) to {MAX_RATING} (strongly agree), in statement order.")


class ResponseOut(BaseModel):
    id: int
    survey_id: int
    team: str
    answers: list[int]
    score: int
    respondent: str
    created_at: datetime


class TeamOut(BaseModel):
    score: float | None
    stage: str | None
    responses: int


class SurveyReading(BaseModel):
    sales: TeamOut
    marketing: TeamOut
    gap: float | None = Field(description="Marketing's score minus Sales'.")


class IndicatorOut(BaseModel):
    indicator: str
    value: bool | int | float | None
    threshold: bool | int | float
    supports: str
    met: bool


class AlignmentOut(BaseModel):
    stage: str
    survey: SurveyReading
    evidence: list[IndicatorOut]
    next_steps: list[str]
    reasons_to_stay: list[str]
    rule: str
    survey_id: int | None = Field(description="The latest survey with responses.")
    computed_at: datetime


class PlacementOut(BaseModel):
    id: int
    at: datetime
    stage: str
    survey_stage: str | None
    evidence_stage: str
    survey: dict[str, Any]
    evidence: list[dict[str, Any]]


def _surveys(session: SessionDep, surveys: list[Any]) -> list[dict[str, Any]]:
    counts = repository.response_counts(session, [s.id for s in surveys])
    return [{**s.model_dump(), "responses": {"sales": counts[s.id].get("sales", 0),
                                             "marketing": counts[s.id].get("marketing", 0)}}
            for s in surveys]


@router.get("", response_model=AlignmentOut)
def get_alignment(session: SessionDep, _: Viewer) -> dict[str, Any]:
    """Where the organisation stands, from the latest survey and the evidence, and why."""
    return service.current_alignment(session)


@router.get("/history", response_model=Paginated[PlacementOut])
def placement_history(session: SessionDep, _: Viewer, limit: Limit = 50,
                      cursor: CursorParam = None) -> dict[str, Any]:
    """Placements newest first; a row is kept each time the stage or a team's score moved."""
    items, next_cursor = repository.list_placements(session, limit=limit, cursor=cursor)
    return {"items": [p.model_dump() for p in items], "next_cursor": next_cursor}


@router.get("/statements", response_model=list[StatementOut])
def list_statements(_: Viewer) -> list[dict[str, Any]]:
    """The twenty statements, in the order a response's answers follow."""
    return [{"number": s.number, "topic": s.topic, "text": s.text} for s in STATEMENTS]


@router.post("/surveys", status_code=status.HTTP_201_CREATED, response_model=SurveyOut)
def create_survey(body: SurveyIn, session: SessionDep, principal: Editor) -> dict[str, Any]:
    """Open a new round of the survey."""
    return _surveys(session, [service.create_survey(session, name=body.name,
                                                    principal=principal)])[0]


@router.get("/surveys", response_model=Paginated[SurveyOut])
def list_surveys(session: SessionDep, _: Viewer, limit: Limit = 50,
                 cursor: CursorParam = None) -> dict[str, Any]:
    """Surveys newest first, with how many people of each team answered."""
    items, next_cursor = repository.list_surveys(session, limit=limit, cursor=cursor)
    return {"items": _surveys(session, items), "next_cursor": next_cursor}


@router.post("/surveys/{survey_id}/responses", status_code=status.HTTP_201_CREATED,
             response_model=ResponseOut)
def add_response(survey_id: int, body: ResponseIn, session: SessionDep, principal: Viewer
                 ) -> Any:
    """Answer an open survey; any key may, since surveys are filled by many people."""
    return service.add_response(session, survey_id, team=body.team, answers=body.answers,
                                principal=principal)


@router.post("/surveys/{survey_id}/close", response_model=SurveyOut)
def close_survey(survey_id: int, session: SessionDep, _: Editor) -> dict[str, Any]:
    """Stop taking answers; the survey's responses keep counting in the placement."""
    return _surveys(session, [service.close_survey(session, survey_id)])[0]

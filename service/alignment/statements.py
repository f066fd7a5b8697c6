"""The four alignment stages and the twenty diagnostic statements, in survey order.

The stages follow Kotler, Rackham and Krishnaswamy (HBR, July-August 2006). The statements
cover the article's twenty topics, written in Truce's own words; respondents rate each from
1 (strongly disagree) to 5 (strongly agree), and answers arrive in the order of ``STATEMENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """A stage of the relationship; compares by position, lowest first, not alphabetically."""

    UNDEFINED = "Undefined"
    DEFINED = "Defined"
    ALIGNED = "Aligned"
    INTEGRATED = "Integrated"

    @property
    def rank(self) -> int:
        """Position on the spectrum: 0 for Undefined up to 3 for Integrated."""
        return _ORDER.index(self)

    @classmethod
    def from_rank(cls, rank: int) -> Stage:
        """The stage at a position, clamped to the ends so arithmetic on ranks stays safe."""
        return _ORDER[max(0, min(rank, len(_ORDER) - 1))]

    def above(self) -> Stage | None:
        """The next stage up, or None at Integrated."""
        return _ORDER[self.rank + 1] if self.rank + 1 < len(_ORDER) else None

    def below(self) -> Stage | None:
        """The next stage down, or None at Undefined."""
        return _ORDER[self.rank - 1] if self.rank > 0 else None

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank >= other.rank


_ORDER: tuple[Stage, ...] = (Stage.UNDEFINED, Stage.DEFINED, Stage.ALIGNED, Stage.INTEGRATED)
STAGES: tuple[Stage, ...] = _ORDER


@dataclass(frozen=True)
class Statement:
    """One survey item; ``stage_hint`` is the stage where agreement usually becomes common."""

    number: int
    topic: str
    text: str
    stage_hint: Stage


def _s(number: int, topic: str, text: str, hint: Stage) -> Statement:
    return Statement(number=number, topic=topic, text=text, stage_hint=hint)


STATEMENTS: tuple[Statement, ...] = (
    _s(1, "forecast accuracy",
       "The revenue numbers Sales forecasts usually turn out close to what actually closes.",
       Stage.INTEGRATED),
    _s(2, "no blame",
       "When a quarter disappoints, neither team spends its energy blaming the other.",
       Stage.ALIGNED),
    _s(3, "marketers meet key customers",
       "People from Marketing regularly join Sales in conversations with important customers "
       "while deals are being worked.",
       Stage.ALIGNED),
    _s(4, "sales input into the marketing plan",
       "Sales is asked for, and gives, real input when Marketing builds its plan.",
       Stage.ALIGNED),
    _s(5, "useful collateral",
       "Sellers find the material Marketing produces genuinely useful and actually use it "
       "with buyers.",
       Stage.DEFINED),
    _s(6, "sales feedback",
       "Sellers tell Marketing what they hear in the field without having to be chased for it.",
       Stage.ALIGNED),
    _s(7, "common vocabulary",
       "Both teams mean the same thing by words such as lead, qualified and opportunity.",
       Stage.DEFINED),
    _s(8, "heads confer upstream",
       "The heads of Sales and Marketing talk early about new ideas, what the market is "
       "signalling and where the product should go, not only about this quarter's deals.",
       Stage.INTEGRATED),
    _s(9, "how segments buy",
       "The two teams have worked out together how each kind of customer goes about buying.",
       Stage.ALIGNED),
    _s(10, "little time lost to disputes",
       "Our joint meetings are spent on the work, not on settling arguments between the teams.",
       Stage.DEFINED),
    _s(11, "long-range joint planning",
       "Sales and Marketing plan together for the next two years or more, not just the next "
       "campaign.",
       Stage.INTEGRATED),
    _s(12, "common success metrics",
       "Both teams are judged by the same numbers and agree on how those numbers are counted.",
       Stage.INTEGRATED),
    _s(13, "key-account strategy",
       "Marketing has a real part in deciding how we win and grow our most important accounts.",
       Stage.ALIGNED),
    _s(14, "jointly built funnels",
       "We built our funnel stages together, and they follow the buyer from first interest "
       "through to renewal.",
       Stage.INTEGRATED),
    _s(15, "funnel analysis",
       "Marketing studies the funnel data and uses it to make pipeline and revenue more "
       "predictable.",
       Stage.INTEGRATED),
    _s(16, "rise or fall together",
       "People in both teams feel they succeed or fail as one group.",
       Stage.INTEGRATED),
    _s(17, "one executive",
       "One leader is responsible for both Sales and Marketing.",
       Stage.INTEGRATED),
    _s(18, "movement between functions",
       "It is normal for people to move from Sales to Marketing, or the other way, during "
       "their careers here.",
       Stage.ALIGNED),
    _s(19, "joint training and events",
       "Sales and Marketing train together and hold shared events.",
       Stage.ALIGNED),
    _s(20, "presenting each other's plans",
       "When plans go to senior management, each team helps prepare and present the other's.",
       Stage.ALIGNED),
)

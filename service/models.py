"""Import every table so Alembic and the tests see the whole schema."""

from metrics.facts import (  # noqa: F401
    ClockFact,
    ClockMonth,
    Customer,
    DealDay,
    DealFact,
    FactChange,
    FactState,
    MqlDay,
    MqlFact,
    WonCycleMonth,
)
from metrics.indexes import METRIC_INDEXES  # noqa: F401
from metrics.models import Forecast, Spend  # noqa: F401
from service.alignment.models import MetricRead, Placement, Survey, SurveyResponse  # noqa: F401
from service.auth.models import ApiKey, AuditEvent  # noqa: F401
from service.crm.models import Account, Activity, Campaign, FieldChange, Opportunity, Owner  # noqa: F401
from service.definitions.models import BacktestJob, DefinitionApproval, LeadDefinition  # noqa: F401
from service.handoffs.models import (  # noqa: F401, E501
    BusinessCalendar,
    Commitment,
    DirectoryEntry,
    Handoff,
    OutboxEvent,
    SlaClock,
    SlaPolicy,
)
from service.people.models import Person, PersonLink, StageEvent  # noqa: F401
from service.sync.models import CrmRow, Quarantined, SyncCursor, SyncRun  # noqa: F401

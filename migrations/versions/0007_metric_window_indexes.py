"""indexes for the metric queries: handoffs decided or opened, clocks due or stopped, a
person's stages, and a deal's CRM row and person (covering on PostgreSQL)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:45:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ('ix_handoff_decided_at', 'handoff', ['decided_at'], []),
    ('ix_handoff_opened_at', 'handoff', ['opened_at'], []),
    ('ix_sla_clock_due_at', 'sla_clock', ['due_at'],
     ['handoff_id', 'kind', 'state', 'stopped_at']),
    ('ix_sla_clock_kind_stopped_at', 'sla_clock', ['kind', 'stopped_at'],
     ['handoff_id', 'business_minutes', 'calendar_minutes']),
    ('ix_stage_event_person_stage_at', 'stage_event', ['person_id', 'stage', 'at'],
     ['definition_version']),
    ('ix_crm_record_key_person_id', 'crm_record', ['key'], ['person_id']),
    ('ix_person_id_facets', 'person', ['id'], ['created_at', 'account_key', 'owner_key']),
)


def upgrade() -> None:
    for name, table, columns, include in INDEXES:
        op.create_index(name, table, columns, unique=False, postgresql_include=include)


def downgrade() -> None:
    for name, table, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

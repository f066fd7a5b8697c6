"""indexes for the metric windows: handoffs decided or opened, clocks due, later stages

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


def upgrade() -> None:
    op.create_index('ix_handoff_decided_at', 'handoff', ['decided_at'], unique=False)
    op.create_index('ix_handoff_opened_at', 'handoff', ['opened_at'], unique=False)
    op.create_index('ix_sla_clock_due_at', 'sla_clock', ['due_at'], unique=False)
    op.create_index('ix_stage_event_person_stage_at', 'stage_event',
                    ['person_id', 'stage', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_stage_event_person_stage_at', table_name='stage_event')
    op.drop_index('ix_sla_clock_due_at', table_name='sla_clock')
    op.drop_index('ix_handoff_opened_at', table_name='handoff')
    op.drop_index('ix_handoff_decided_at', table_name='handoff')

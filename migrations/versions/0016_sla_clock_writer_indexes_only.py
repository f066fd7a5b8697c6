"""SLA clocks keep only the indexes their writers use

Migration 0007 gave ``sla_clock`` two covering indexes for the metric windows (clocks due,
clocks stopped). The metric windows, the alignment evidence and the commitments now read
the clock mirror ``metric_clock``, which has its own; the two indexes only made each clock the SLA scan moves cost two more index
insertions (a move changes ``state``, which the scan's own index holds, so it is never a
heap-only update): at a million clocks the scan took 3.5× a bare UPDATE instead of 2×.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_sla_clock_kind_stopped_at', table_name='sla_clock')
    op.drop_index('ix_sla_clock_due_at', table_name='sla_clock')


def downgrade() -> None:
    op.create_index('ix_sla_clock_due_at', 'sla_clock', ['due_at'], unique=False,
                    postgresql_include=['handoff_id', 'kind', 'state', 'stopped_at'])
    op.create_index('ix_sla_clock_kind_stopped_at', 'sla_clock', ['kind', 'stopped_at'],
                    unique=False,
                    postgresql_include=['handoff_id', 'business_minutes', 'calendar_minutes'])

"""SLA clocks: the scan's moves become heap-only updates

The SLA scan moves clocks from running to warning to breached, a million in one statement
at scale. A move changes ``state``; while an index held ``state`` (0004's open-clock index,
and 0007's two covering indexes for the metric windows) no move could be a heap-only
update, so every moved clock cost an insertion into each of the table's five indexes: at a
million clocks the scan took 3.5× a bare UPDATE.

Now the metric windows, the alignment evidence and the commitments read the clock mirror
``metric_clock`` (0008), which has its own indexes; the two covering indexes go. Open clocks
are indexed by due instant alone (``stopped_at`` in the predicate, which no move changes),
and on PostgreSQL the table's pages keep half their room for new row versions. Pages
already written keep their fill until rewritten (``VACUUM FULL sla_clock`` at a quiet
time); clocks opened from now on get it at once.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text('stopped_at IS NULL')


def upgrade() -> None:
    op.drop_index('ix_sla_clock_kind_stopped_at', table_name='sla_clock')
    op.drop_index('ix_sla_clock_due_at', table_name='sla_clock')
    op.drop_index('ix_sla_clock_open_due', table_name='sla_clock')
    op.create_index('ix_sla_clock_open_due', 'sla_clock', ['due_at'], unique=False,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE sla_clock SET (fillfactor = 50)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE sla_clock RESET (fillfactor)')
    op.drop_index('ix_sla_clock_open_due', table_name='sla_clock')
    op.create_index('ix_sla_clock_open_due', 'sla_clock', ['stopped_at', 'state', 'due_at'],
                    unique=False)
    op.create_index('ix_sla_clock_due_at', 'sla_clock', ['due_at'], unique=False,
                    postgresql_include=['handoff_id', 'kind', 'state', 'stopped_at'])
    op.create_index('ix_sla_clock_kind_stopped_at', 'sla_clock', ['kind', 'stopped_at'],
                    unique=False,
                    postgresql_include=['handoff_id', 'business_minutes', 'calendar_minutes'])

"""partial indexes for the deals open at an instant and the won deals of a window

Pipeline velocity counted the deals open at a window's end with one condition (not closed,
or closed later) that no index could answer, so every request read the whole deal table;
its median cycle and the sales-cycle histograms read every closed deal of the window to
keep the won ones. An index over the open deals' creation instants, and one over the won
deals' close dates carrying what those histograms read, let both be read from an index.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 14:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_metric_deal_open', 'metric_deal', ['created_at'],
                    sqlite_where=sa.text('NOT is_closed'),
                    postgresql_where=sa.text('NOT is_closed'))
    op.create_index('ix_metric_deal_won', 'metric_deal', ['close_date'],
                    sqlite_where=sa.text('is_closed AND is_won'),
                    postgresql_where=sa.text('is_closed AND is_won'),
                    postgresql_include=['cycle_days', 'lead_days', 'amount', 'sourced',
                                        'mql_version'])


def downgrade() -> None:
    op.drop_index('ix_metric_deal_won', table_name='metric_deal')
    op.drop_index('ix_metric_deal_open', table_name='metric_deal')

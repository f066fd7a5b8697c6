"""won deals' cycle lengths per close month

Pipeline velocity's median cycle and the sales-cycle histograms read every won deal of the
window (84,000 index entries for nine months of a large pipeline). Counted per close month
and length when the deal facts are built, a window's whole months are a few hundred rows.
The deal facts are marked changed, so the next metric read builds the new table.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('metric_won_cycle_month',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_won_cycle_month'))
    )
    op.create_index('ix_metric_won_cycle_month_month', 'metric_won_cycle_month', ['month'])
    op.execute("INSERT INTO metric_change (family) VALUES ('deals')")


def downgrade() -> None:
    op.drop_index('ix_metric_won_cycle_month_month', table_name='metric_won_cycle_month')
    op.drop_table('metric_won_cycle_month')

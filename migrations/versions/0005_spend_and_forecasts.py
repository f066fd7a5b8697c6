"""spend and forecasts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('forecast',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forecast'))
    )
    with op.batch_alter_table('forecast', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forecast_period_end'), ['period_end'], unique=False)

    op.create_table('spend',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend'))
    )
    with op.batch_alter_table('spend', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spend_period_end'), ['period_end'], unique=False)
        batch_op.create_index(batch_op.f('ix_spend_team'), ['team'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('spend', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spend_team'))
        batch_op.drop_index(batch_op.f('ix_spend_period_end'))

    op.drop_table('spend')
    with op.batch_alter_table('forecast', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_forecast_period_end'))

    op.drop_table('forecast')

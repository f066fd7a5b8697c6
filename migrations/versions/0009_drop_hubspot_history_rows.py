"""drop HubSpot property history from crm_record: since the sync keeps those facts in
field_change and activity only, the rows it wrote before are dead weight (nothing reads them:
every crm_record reader asks for person rows or looks rows up by the keys it writes)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:15:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    # the objects connectors/hubspot/history.py gave these records (HUBSPOT_*_OBJECT)
    op.execute(sa.text("DELETE FROM crm_record WHERE source = 'hubspot' AND object IN "
                       "('contact_history', 'contact_activity')"))


def downgrade() -> None:
    # nothing to restore: field_change and activity still hold every fact these rows carried,
    # and the sync no longer reads or writes such rows
    pass

"""crm_record and person_link point at persons without a foreign key; stage_event loses its
person_id index, which the (person_id, stage, source_ref) unique index already serves

A full sync inserts a CRM row and a link per person record, and PostgreSQL checked each
one's person with a query and a row lock: with stage_event's check, about a quarter of the
time its COPYs took. Only the sync's identity resolution writes these two columns, with ids
it read from ``person`` or drew from its sequence for persons it inserts in the same
transaction, and a person is never deleted (a merged one stays, pointing at its survivor),
so the check could not fail.
stage_event keeps its key: the API and the definitions write events too.

On SQLite the two tables are rebuilt (batch mode), and their triggers are made again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 14:30:00.000000
"""
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNCHECKED = ('crm_record', 'person_link')


@contextmanager
def _rebuilt(table: str) -> Iterator[object]:
    """A batch operation on ``table``, with its SQLite triggers made again afterwards (a
    rebuilt table loses them)."""
    triggers: list[str] = []
    if op.get_bind().dialect.name == 'sqlite':
        triggers = [sql for (sql,) in op.get_bind().execute(sa.text(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {'t': table})]
    with op.batch_alter_table(table, schema=None) as batch_op:
        yield batch_op
    for sql in triggers:
        op.execute(sql)


def upgrade() -> None:
    for table in UNCHECKED:
        with _rebuilt(table) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_person_id_person', type_='foreignkey')
    with op.batch_alter_table('stage_event', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_event_person_id')


def downgrade() -> None:
    with op.batch_alter_table('stage_event', schema=None) as batch_op:
        batch_op.create_index('ix_stage_event_person_id', ['person_id'], unique=False)
    for table in UNCHECKED:
        with _rebuilt(table) as batch_op:
            batch_op.create_foreign_key(f'fk_{table}_person_id_person', 'person',
                                        ['person_id'], ['id'])

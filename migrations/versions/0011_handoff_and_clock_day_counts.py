"""daily counts of handoffs and SLA clock outcomes, kept by the database as deltas

A window's lead-acceptance, rejection-reason and SLA-compliance counts were aggregated from
tens of thousands of index rows per request. These tables hold the same counts per UTC day:
every insert, update or delete of a handoff (or of a clock fact) appends its change as
signed rows (+1 for the row as it is now, -1 for the row as it was), so a reader summing a
window's rows is exact at any moment, and no writer ever waits on another's counter row.
``metrics.facts.compact`` folds the deltas into one row per key from time to time.

On SQLite the clock mirror of 0008 (``INSERT OR REPLACE``) becomes an upsert: a replace
deletes without firing delete triggers, which would leave the old clock's count behind.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 04:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0011'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HANDOFF_KEYS = ('opened_day', 'decided_day', 'state', 'reason', 'definition_version')
CLOCK_KEYS = ('due_day', 'kind', 'definition_version', 'outcome')
# what ``metrics.aggregates.clock_outcomes`` reads from a clock fact, with "running" for a
# clock whose outcome depends on the time asked about
OUTCOME = ("CASE WHEN {r}.state IN ('met', 'breached') THEN {r}.state "
           "WHEN {r}.stopped_at IS NOT NULL THEN CASE WHEN {r}.stopped_at <= {r}.due_at "
           "THEN 'met' ELSE 'breached' END ELSE 'running' END")
# the SQLite clock mirror of 0008, and what it becomes
CLOCK_COLUMNS = ('clock_id', 'handoff_id', 'kind', 'definition_version', 'state', 'due_at',
                 'stopped_at', 'business_minutes', 'calendar_minutes')
MIRRORED_UPDATE = ('UPDATE OF id, handoff_id, kind, due_at, stopped_at, business_minutes, '
                   'calendar_minutes')


def _day(dialect: str, instant: str) -> str:
    if dialect == 'postgresql':
        return f"CAST(({instant} AT TIME ZONE 'UTC') AS DATE)"
    return f"date({instant})"  # SQLite keeps naive UTC text


def _handoff_values(dialect: str, r: str) -> str:
    return _labelled(HANDOFF_KEYS, _day(dialect, f'{r}.opened_at'),
                     _day(dialect, f'{r}.decided_at'), f'{r}.state', f'{r}.reason',
                     f'{r}.definition_version')


def _clock_values(dialect: str, r: str) -> str:
    return _labelled(CLOCK_KEYS, _day(dialect, f'{r}.due_at'), f'{r}.kind',
                     f'{r}.definition_version', OUTCOME.format(r=r))


def _labelled(keys: Sequence[str], *values: str) -> str:
    return ', '.join(f'{v} AS {k}' for k, v in zip(keys, values, strict=True))


def _tables() -> None:
    op.create_table('metric_handoff_day',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('opened_day', sa.Date(), nullable=False),
    sa.Column('decided_day', sa.Date(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('definition_version', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_handoff_day'))
    )
    op.create_index('ix_metric_handoff_day_decided_day', 'metric_handoff_day',
                    ['decided_day'])
    op.create_index('ix_metric_handoff_day_opened_day', 'metric_handoff_day', ['opened_day'])
    op.create_table('metric_clock_day',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('due_day', sa.Date(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_clock_day'))
    )
    op.create_index('ix_metric_clock_day_due_day', 'metric_clock_day', ['due_day'])


def _postgres_triggers() -> None:
    for table, rollup, keys, values in (
            ('handoff', 'metric_handoff_day', HANDOFF_KEYS, _handoff_values),
            ('metric_clock', 'metric_clock_day', CLOCK_KEYS, _clock_values)):
        names = ', '.join(keys)
        new, old = values('postgresql', 'n'), values('postgresql', 'o')
        count = (f"INSERT INTO {rollup} ({names}, n) SELECT {names}, sum(d) FROM ({{rows}}) "
                 f"AS x GROUP BY {names} HAVING sum(d) <> 0")
        added = f"SELECT {new}, 1 AS d FROM new_rows n"
        removed = f"SELECT {old}, -1 AS d FROM old_rows o"
        op.execute(f"""
CREATE FUNCTION {rollup}_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {count.format(rows=added)};
  ELSIF TG_OP = 'DELETE' THEN
    {count.format(rows=removed)};
  ELSE
    {count.format(rows=f'{added} UNION ALL {removed}')};
  END IF;
  RETURN NULL;
END $$""")
        for event, tables in (('INSERT', 'NEW TABLE AS new_rows'),
                              ('DELETE', 'OLD TABLE AS old_rows'),
                              ('UPDATE', 'OLD TABLE AS old_rows NEW TABLE AS new_rows')):
            op.execute(f"CREATE TRIGGER {rollup}_{event.lower()} AFTER {event} ON {table} "
                       f"REFERENCING {tables} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {rollup}_count()")
        op.execute(f"""
CREATE FUNCTION {rollup}_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {rollup};
  RETURN NULL;
END $$""")
        op.execute(f"CREATE TRIGGER {rollup}_truncate AFTER TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {rollup}_clear()")


def _sqlite_mirror(upsert: bool) -> None:
    """0008's clock mirror on SQLite, as a replace (``upsert=False``) or as an upsert."""
    for name in ('insert', 'update'):
        op.execute(f"DROP TRIGGER metric_mirror_clock_{name}")
    names = ', '.join(CLOCK_COLUMNS)
    values = ("NEW.id, NEW.handoff_id, NEW.kind, (SELECT h.definition_version FROM handoff h "
              "WHERE h.id = NEW.handoff_id), NEW.state, NEW.due_at, NEW.stopped_at, "
              "NEW.business_minutes, NEW.calendar_minutes")
    if upsert:
        updates = ', '.join(f'{c} = excluded.{c}' for c in CLOCK_COLUMNS[1:])
        write = (f"INSERT INTO metric_clock ({names}) VALUES ({values}) "
                 f"ON CONFLICT (clock_id) DO UPDATE SET {updates};")
    else:
        write = f"INSERT OR REPLACE INTO metric_clock ({names}) VALUES ({values});"
    op.execute(f"CREATE TRIGGER metric_mirror_clock_insert AFTER INSERT ON sla_clock "
               f"BEGIN {write} END")
    op.execute(f"CREATE TRIGGER metric_mirror_clock_update AFTER {MIRRORED_UPDATE} "
               f"ON sla_clock BEGIN "
               f"DELETE FROM metric_clock WHERE clock_id = OLD.id AND OLD.id <> NEW.id; "
               f"{write} END")


def _sqlite_triggers() -> None:
    _sqlite_mirror(upsert=True)
    for table, rollup, keys, values, columns in (
            ('handoff', 'metric_handoff_day', HANDOFF_KEYS, _handoff_values,
             'opened_at, decided_at, state, reason, definition_version'),
            ('metric_clock', 'metric_clock_day', CLOCK_KEYS, _clock_values,
             'due_at, kind, definition_version, state, stopped_at')):
        names = ', '.join(keys)
        add = f"INSERT INTO {rollup} ({names}, n) SELECT {values('sqlite', 'NEW')}, 1;"
        remove = f"INSERT INTO {rollup} ({names}, n) SELECT {values('sqlite', 'OLD')}, -1;"
        op.execute(f"CREATE TRIGGER {rollup}_insert AFTER INSERT ON {table} BEGIN {add} END")
        op.execute(f"CREATE TRIGGER {rollup}_delete AFTER DELETE ON {table} "
                   f"BEGIN {remove} END")
        op.execute(f"CREATE TRIGGER {rollup}_update AFTER UPDATE OF {columns} ON {table} "
                   f"BEGIN {remove} {add} END")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _tables()
    if dialect == 'postgresql':
        _postgres_triggers()
    else:
        _sqlite_triggers()
    for table, rollup, keys, values in (
            ('handoff', 'metric_handoff_day', HANDOFF_KEYS, _handoff_values),
            ('metric_clock', 'metric_clock_day', CLOCK_KEYS, _clock_values)):
        names = ', '.join(keys)
        op.execute(f"INSERT INTO {rollup} ({names}, n) SELECT {names}, count(*) FROM "
                   f"(SELECT {values(dialect, 'r')} FROM {table} r) AS x "
                   f"GROUP BY {names}")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, rollup in (('handoff', 'metric_handoff_day'),
                              ('metric_clock', 'metric_clock_day')):
            for event in ('insert', 'update', 'delete', 'truncate'):
                op.execute(f"DROP TRIGGER {rollup}_{event} ON {table}")
            op.execute(f"DROP FUNCTION {rollup}_count()")
            op.execute(f"DROP FUNCTION {rollup}_clear()")
    else:
        for rollup in ('metric_handoff_day', 'metric_clock_day'):
            for event in ('insert', 'update', 'delete'):
                op.execute(f"DROP TRIGGER {rollup}_{event}")
        _sqlite_mirror(upsert=False)
    op.drop_table('metric_clock_day')
    op.drop_table('metric_handoff_day')

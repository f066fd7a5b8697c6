"""stopped SLA clocks' durations per UTC month, kept by the database as deltas

Time to accept and time to first touch counted a window's clocks per (business, calendar)
minutes pair on every request: 99,000 index rows for nine months of a large funnel. This
table holds, per UTC month a clock stopped in, its kind and definition version, how many
clocks took each whole number of business minutes and each of calendar minutes (only
clocks with both, as the metrics count them). As with migration 0011's daily counts, every
write to ``metric_clock`` appends signed rows (+1 for the clock as it is now, -1 for it as
it was) and ``metrics.facts.compact`` folds them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 17:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = 'month, kind, definition_version, measure, minutes'
MEASURES = (('business', 'business_minutes'), ('calendar', 'calendar_minutes'))
COUNTED = ('{r}.stopped_at IS NOT NULL AND {r}.business_minutes IS NOT NULL '
           'AND {r}.calendar_minutes IS NOT NULL')


def _month(dialect: str, instant: str) -> str:
    if dialect == 'postgresql':
        return f"CAST(date_trunc('month', {instant} AT TIME ZONE 'UTC') AS DATE)"
    return f"date({instant}, 'start of month')"  # SQLite keeps naive UTC text


def _rows(dialect: str, r: str, sign: int) -> str:
    """Each counted clock of ``r`` as two signed rows, one per measure (one pass over ``r``:
    a statement's transition tables can hold every clock it touched)."""
    minutes = ' '.join(f"WHEN '{measure}' THEN {r}.{column}" for measure, column in MEASURES)
    kinds = ' UNION ALL '.join(f"SELECT '{measure}' AS measure" for measure, _ in MEASURES)
    return (f"SELECT {_month(dialect, f'{r}.stopped_at')} AS month, {r}.kind AS kind, "
            f"{r}.definition_version AS definition_version, m.measure AS measure, "
            f"CASE m.measure {minutes} END AS minutes, {sign} AS d "
            f"FROM {{source}} CROSS JOIN ({kinds}) AS m "
            f"WHERE {COUNTED.format(r=r)}")


def _postgres_triggers() -> None:
    count = (f"INSERT INTO metric_clock_month ({KEYS}, n) SELECT {KEYS}, sum(d) FROM "
             f"({{rows}}) AS x GROUP BY {KEYS} HAVING sum(d) <> 0")
    added = _rows('postgresql', 'n', 1).format(source='new_rows n')
    removed = _rows('postgresql', 'o', -1).format(source='old_rows o')
    op.execute(f"""
CREATE FUNCTION metric_clock_month_count() RETURNS trigger LANGUAGE plpgsql AS $$
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
        op.execute(f"CREATE TRIGGER metric_clock_month_{event.lower()} AFTER {event} "
                   f"ON metric_clock REFERENCING {tables} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION metric_clock_month_count()")
    op.execute("""
CREATE FUNCTION metric_clock_month_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM metric_clock_month;
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER metric_clock_month_truncate AFTER TRUNCATE ON metric_clock "
               "FOR EACH STATEMENT EXECUTE FUNCTION metric_clock_month_clear()")


def _sqlite_triggers() -> None:
    def write(r: str, sign: int) -> str:
        values = ', '.join(
            f"({_month('sqlite', f'{r}.stopped_at')}, {r}.kind, {r}.definition_version, "
            f"'{measure}', {r}.{column}, {sign})" for measure, column in MEASURES)
        return f"INSERT INTO metric_clock_month ({KEYS}, n) VALUES {values};"

    columns = 'kind, definition_version, stopped_at, business_minutes, calendar_minutes'
    for name, event, r, sign in (('insert', 'INSERT', 'NEW', 1),
                                 ('delete', 'DELETE', 'OLD', -1),
                                 ('update_old', f'UPDATE OF {columns}', 'OLD', -1),
                                 ('update_new', f'UPDATE OF {columns}', 'NEW', 1)):
        op.execute(f"CREATE TRIGGER metric_clock_month_{name} AFTER {event} ON metric_clock "
                   f"WHEN {COUNTED.format(r=r)} BEGIN {write(r, sign)} END")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table('metric_clock_month',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=True),
    sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_clock_month'))
    )
    op.create_index('ix_metric_clock_month_kind_month', 'metric_clock_month',
                    ['kind', 'month'])
    if dialect == 'postgresql':
        _postgres_triggers()
    else:
        _sqlite_triggers()
    rows = _rows(dialect, 'r', 1).format(source='metric_clock r')
    op.execute(f"INSERT INTO metric_clock_month ({KEYS}, n) SELECT {KEYS}, sum(d) "
               f"FROM ({rows}) AS x GROUP BY {KEYS}")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for event in ('insert', 'update', 'delete', 'truncate'):
            op.execute(f"DROP TRIGGER metric_clock_month_{event} ON metric_clock")
        op.execute("DROP FUNCTION metric_clock_month_count()")
        op.execute("DROP FUNCTION metric_clock_month_clear()")
    else:
        for name in ('insert', 'delete', 'update_old', 'update_new'):
            op.execute(f"DROP TRIGGER metric_clock_month_{name}")
    op.drop_index('ix_metric_clock_month_kind_month', table_name='metric_clock_month')
    op.drop_table('metric_clock_month')

"""metric facts: deals (with daily counts and customers' first wins), MQLs (with daily
counts) and SLA clocks kept ahead of query time, with the triggers that keep them correct (see metrics/facts.py)

Clock facts are mirrored row by row from sla_clock. Handoffs get covering indexes for the
windows the metrics count them in. Deal and MQL facts are rebuilt by the
next metric request after a write to one of their tables has left a marker in
metric_change (one per family and writing transaction on PostgreSQL: a statement trigger
remembers it marked in a transaction-local setting).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (the columns whose updates matter, or () for any update; families it feeds)
MARKED = {
    'opportunity': ((), ('deals',)),
    'crm_record': (('person_id', 'key'), ('deals',)),
    'person': (('created_at', 'account_key'), ('deals', 'mqls')),
    'stage_event': ((), ('deals', 'mqls')),
    'lead_definition': ((), ('deals',)),
    'handoff': (('state', 'mql_event_id'), ('mqls',)),
    'account': (('key', 'employees'), ('deals', 'mqls')),
    'owner': (('key', 'team'), ('deals',)),
}
# A clock is mirrored when it is written, except for the SLA scan's moves of a running clock
# to warning or breached (its state alone): a running clock's outcome is read from its due
# instant and the time asked about, which is what the scan's breach records, and mirroring
# thousands of moves per scan would double the scan's cost.
MIRRORED_UPDATE = ('UPDATE OF id, handoff_id, kind, due_at, stopped_at, business_minutes, '
                   'calendar_minutes')
CLOCK_COLUMNS = ('clock_id', 'handoff_id', 'kind', 'definition_version', 'state', 'due_at',
                 'stopped_at', 'business_minutes', 'calendar_minutes')


def _clock_values(row: str) -> str:
    return (f"{row}.id, {row}.handoff_id, {row}.kind, (SELECT h.definition_version FROM "
            f"handoff h WHERE h.id = {row}.handoff_id), {row}.state, {row}.due_at, "
            f"{row}.stopped_at, {row}.business_minutes, {row}.calendar_minutes")


def _tables() -> None:
    op.create_table('metric_deal',
    sa.Column('opportunity_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('account_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('owner_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('cycle_days', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('lead_days', sa.Integer(), nullable=True),
    sa.Column('customer', sqlmodel.sql.sqltypes.AutoString(length=220), nullable=False),
    sa.Column('sourced', sa.Boolean(), nullable=False),
    sa.Column('mql_version', sa.Integer(), nullable=True),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.PrimaryKeyConstraint('opportunity_id', name=op.f('pk_metric_deal'))
    )
    op.create_index('ix_metric_deal_closed', 'metric_deal', ['close_date'],
                    sqlite_where=sa.text('is_closed'), postgresql_where=sa.text('is_closed'),
                    postgresql_include=['is_won', 'cycle_days', 'lead_days', 'amount',
                                        'sourced', 'mql_version'])
    op.create_index('ix_metric_deal_created_at', 'metric_deal', ['created_at'],
                    postgresql_include=['is_closed', 'close_date'])
    op.create_table('metric_deal_day',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('close_date', sa.Date(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_deal_day'))
    )
    op.create_index('ix_metric_deal_day_close_date', 'metric_deal_day', ['close_date'])
    op.create_table('metric_customer',
    sa.Column('customer', sqlmodel.sql.sqltypes.AutoString(length=220), nullable=False),
    sa.Column('first_won', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('customer', name=op.f('pk_metric_customer'))
    )
    op.create_index('ix_metric_customer_first_won', 'metric_customer', ['first_won'])
    op.create_table('metric_mql',
    sa.Column('event_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=True),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reached_sal', sa.Boolean(), nullable=False),
    sa.Column('reached_sql', sa.Boolean(), nullable=False),
    sa.Column('won', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_metric_mql'))
    )
    op.create_index('ix_metric_mql_at', 'metric_mql', ['at'])
    op.create_table('metric_mql_day',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=True),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reached_sal', sa.Boolean(), nullable=False),
    sa.Column('reached_sql', sa.Boolean(), nullable=False),
    sa.Column('won', sa.Boolean(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_mql_day'))
    )
    op.create_index('ix_metric_mql_day_day', 'metric_mql_day', ['day'])
    op.create_table('metric_clock',
    sa.Column('clock_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('due_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('business_minutes', sa.Integer(), nullable=True),
    sa.Column('calendar_minutes', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('clock_id', name=op.f('pk_metric_clock')),
    postgresql_with={'fillfactor': 80}
    )
    op.create_index('ix_metric_clock_kind_stopped_at', 'metric_clock', ['kind', 'stopped_at'],
                    postgresql_include=['definition_version', 'business_minutes',
                                        'calendar_minutes', 'handoff_id'])
    op.create_index('ix_metric_clock_due_at', 'metric_clock', ['due_at'])
    op.create_table('metric_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_change'))
    )
    op.create_index('ix_metric_change_family', 'metric_change', ['family'])
    op.create_table('metric_fact_state',
    sa.Column('family', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('family', name=op.f('pk_metric_fact_state'))
    )


def _postgres_triggers() -> None:
    op.execute("""
CREATE FUNCTION metric_mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  family text;
BEGIN
  FOREACH family IN ARRAY TG_ARGV LOOP
    IF coalesce(current_setting('truce.metric_stale_' || family, true), '') <> 'y' THEN
      INSERT INTO metric_change (family) VALUES (family);
      PERFORM set_config('truce.metric_stale_' || family, 'y', true);
    END IF;
  END LOOP;
  RETURN NULL;
END $$""")
    for table, (columns, families) in MARKED.items():
        update = 'UPDATE' + (f" OF {', '.join(columns)}" if columns else '')
        args = ', '.join(f"'{f}'" for f in families)
        op.execute(f"CREATE TRIGGER metric_mark_stale AFTER INSERT OR DELETE OR TRUNCATE OR "
                   f"{update} ON {table} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION metric_mark_stale({args})")
    # inserted and deleted clocks: one set-based statement per statement (the bench loads
    # hundreds of thousands at once), over the rows it wrote (transition tables); updated
    # ones row by row, as PostgreSQL allows a column list only there
    names = ', '.join(CLOCK_COLUMNS)
    updates = ', '.join(f'{c} = EXCLUDED.{c}' for c in CLOCK_COLUMNS[1:])
    op.execute(f"""
CREATE FUNCTION metric_mirror_clocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM metric_clock m USING old_clocks o WHERE m.clock_id = o.id;
  ELSE
    INSERT INTO metric_clock ({names}) SELECT {_clock_values('n')} FROM new_clocks n
    ON CONFLICT (clock_id) DO UPDATE SET {updates};
  END IF;
  RETURN NULL;
END $$""")
    for event, tables in (('INSERT', 'NEW TABLE AS new_clocks'),
                          ('DELETE', 'OLD TABLE AS old_clocks')):
        op.execute(f"CREATE TRIGGER metric_mirror_clocks_{event.lower()} AFTER {event} "
                   f"ON sla_clock REFERENCING {tables} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION metric_mirror_clocks()")
    op.execute(f"""
CREATE FUNCTION metric_mirror_clock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.id <> NEW.id THEN
    DELETE FROM metric_clock WHERE clock_id = OLD.id;
  END IF;
  INSERT INTO metric_clock ({names}) VALUES ({_clock_values('NEW')})
  ON CONFLICT (clock_id) DO UPDATE SET {updates};
  RETURN NULL;
END $$""")
    op.execute(f"CREATE TRIGGER metric_mirror_clocks_update AFTER {MIRRORED_UPDATE} "
               "ON sla_clock FOR EACH ROW EXECUTE FUNCTION metric_mirror_clock()")
    op.execute("""
CREATE FUNCTION metric_clear_clocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM metric_clock;
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER metric_clear_clocks AFTER TRUNCATE ON sla_clock "
               "FOR EACH STATEMENT EXECUTE FUNCTION metric_clear_clocks()")


def _sqlite_triggers() -> None:
    for table, (columns, families) in MARKED.items():
        body = ' '.join(
            f"INSERT INTO metric_change (family) SELECT '{f}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM metric_change WHERE family = '{f}');" for f in families)
        update = 'UPDATE' + (f" OF {', '.join(columns)}" if columns else '')
        for event, name in (('INSERT', 'insert'), ('DELETE', 'delete'), (update, 'update')):
            op.execute(f"CREATE TRIGGER metric_mark_stale_{table}_{name} AFTER {event} "
                       f"ON {table} BEGIN {body} END")
    names = ', '.join(CLOCK_COLUMNS)
    upsert = f"INSERT OR REPLACE INTO metric_clock ({names}) VALUES ({_clock_values('NEW')});"
    op.execute(f"CREATE TRIGGER metric_mirror_clock_insert AFTER INSERT ON sla_clock "
               f"BEGIN {upsert} END")
    op.execute(f"CREATE TRIGGER metric_mirror_clock_update AFTER {MIRRORED_UPDATE} "
               f"ON sla_clock BEGIN "
               f"DELETE FROM metric_clock WHERE clock_id = OLD.id AND OLD.id <> NEW.id; "
               f"{upsert} END")
    op.execute("CREATE TRIGGER metric_mirror_clock_delete AFTER DELETE ON sla_clock "
               "BEGIN DELETE FROM metric_clock WHERE clock_id = OLD.id; END")


def _handoff_indexes() -> None:
    """Handoffs decided in a window by state, and opened in it, read from the index alone."""
    op.create_index('ix_handoff_decided_at_cover', 'handoff', ['decided_at'],
                    postgresql_include=['state', 'definition_version', 'reason'],
                    postgresql_where=sa.text('decided_at IS NOT NULL'),
                    sqlite_where=sa.text('decided_at IS NOT NULL'))
    op.drop_index('ix_handoff_opened_at', table_name='handoff')
    op.create_index('ix_handoff_opened_at', 'handoff', ['opened_at'],
                    postgresql_include=['decided_at', 'definition_version'])


def upgrade() -> None:
    _tables()
    _handoff_indexes()
    if op.get_bind().dialect.name == 'postgresql':
        _postgres_triggers()
    else:
        _sqlite_triggers()
    names = ', '.join(CLOCK_COLUMNS)
    op.execute(f"INSERT INTO metric_clock ({names}) SELECT {_clock_values('c')} "
               "FROM sla_clock c")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in MARKED:
            op.execute(f"DROP TRIGGER metric_mark_stale ON {table}")
        for event in ('insert', 'update', 'delete'):
            op.execute(f"DROP TRIGGER metric_mirror_clocks_{event} ON sla_clock")
        op.execute("DROP TRIGGER metric_clear_clocks ON sla_clock")
        for function in ('metric_mark_stale', 'metric_mirror_clocks', 'metric_mirror_clock',
                         'metric_clear_clocks'):
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for table in MARKED:
            for name in ('insert', 'delete', 'update'):
                op.execute(f"DROP TRIGGER metric_mark_stale_{table}_{name}")
        for name in ('insert', 'update', 'delete'):
            op.execute(f"DROP TRIGGER metric_mirror_clock_{name}")
    op.drop_index('ix_handoff_opened_at', table_name='handoff')
    op.create_index('ix_handoff_opened_at', 'handoff', ['opened_at'])
    op.drop_index('ix_handoff_decided_at_cover', table_name='handoff')
    for table in ('metric_fact_state', 'metric_change', 'metric_clock', 'metric_mql_day',
                  'metric_mql', 'metric_customer', 'metric_deal_day', 'metric_deal'):
        op.drop_table(table)

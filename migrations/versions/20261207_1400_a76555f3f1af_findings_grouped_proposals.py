"""Findings grouped: one open proposal per group (rule, key), its records in problem_proposal_records

A night's checks at a province's volume proposed 58,352 items (46,010 "同一人同期被两个县计入", one per person). A
proposal is now a group — one county's records of one rule and period — with its records one row each in
problem_proposal_records (the JSON list ``records`` goes), and ``record_count`` for the list. (rule, key) is no
longer unique: a decided group stays beside a new open one for records it did not name; a partial unique index
keeps one *open* proposal per group. ix_problem_proposals_state_found serves the province's list (newest first by
state) and its counts by state without reading the table.

Data: each proposal's JSON records become rows. The per-person 劳务人员重复计入 proposals (key
``person:<fingerprint>:<own county>:<other county>``) take their group's key ``pair:<own>:<other>:<YYYY-MM>`` (the
month they were found); the open ones of a group merge into one (the oldest, with every record), decided ones keep
their decision under the group's key. Titles and counts of merged groups are put right by the next run of the
checks. ix_problem_proposal_records_record finds the proposals naming a record (a run keeps a person in the group
that first named them).

Revision ID: a76555f3f1af
Revises: a6c1d2e3f4b5
Create Date: 2026-12-07 14:00:00

"""
import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a76555f3f1af'
down_revision = 'a6c1d2e3f4b5'
branch_labels = None
depends_on = None

OPEN = "proposed"
CHUNK = 5000

proposals = sa.table(
    "problem_proposals", sa.column("id", sa.Integer), sa.column("rule", sa.String), sa.column("key", sa.String),
    sa.column("unit_id", sa.Integer), sa.column("state", sa.String), sa.column("records", sa.JSON),
    sa.column("record_count", sa.Integer), sa.column("found_at", sa.DateTime),
)
records = sa.table(
    "problem_proposal_records", sa.column("proposal_id", sa.Integer), sa.column("record_type", sa.String),
    sa.column("record_id", sa.Integer),
)
def _listed(value) -> list:
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return [(str(t), int(i)) for t, i in value or [] if isinstance(i, int) or str(i).isdigit()]


def _insert(conn, rows) -> None:
    rows = list(rows)
    for start in range(0, len(rows), CHUNK):
        conn.execute(records.insert(), rows[start:start + CHUNK])


def _delete(conn, ids) -> None:
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        conn.execute(records.delete().where(records.c.proposal_id.in_(chunk)))
        conn.execute(proposals.delete().where(proposals.c.id.in_(chunk)))


def upgrade():
    # Read first: on SQLite, the batch below recreates problem_proposals, and dropping the old table deletes (ON
    # DELETE CASCADE) the rows of any table referring to it; so problem_proposal_records is made after it.
    conn = op.get_bind()
    rows = conn.execute(sa.select(proposals.c.id, proposals.c.rule, proposals.c.key, proposals.c.unit_id,
                                  proposals.c.state, proposals.c.records, proposals.c.found_at)
                        .order_by(proposals.c.id)).all()
    listed = {pid: _listed(value) for pid, _rule, _key, _unit, _state, value, _found in rows}

    with op.batch_alter_table('problem_proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_constraint(batch_op.f('uq_problem_proposals_rule_key'), type_='unique')
        batch_op.drop_column('records')
    with op.batch_alter_table('problem_proposals', schema=None) as batch_op:
        batch_op.alter_column('record_count', server_default=None)
        batch_op.create_index('ix_problem_proposals_rule_key', ['rule', 'key'], unique=False)
        batch_op.create_index('ix_problem_proposals_state_found', ['state', 'found_at', 'id'], unique=False)

    op.create_table('problem_proposal_records',
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['proposal_id'], ['problem_proposals.id'], name=op.f('fk_problem_proposal_records_proposal_id_problem_proposals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('proposal_id', 'record_type', 'record_id', name=op.f('pk_problem_proposal_records'))
    )
    with op.batch_alter_table('problem_proposal_records', schema=None) as batch_op:
        batch_op.create_index('ix_problem_proposal_records_record', ['record_type', 'record_id'], unique=False)

    _insert(conn, ({"proposal_id": pid, "record_type": t, "record_id": i}
                   for pid, named in listed.items() for t, i in dict.fromkeys(named)))

    # 劳务人员重复计入: per person -> per county pair and month.
    twice = [(pid, key, unit, state, found) for pid, rule, key, unit, state, _, found in rows
             if rule == "counted_twice" and key.startswith("person:")]
    kept, gone, rekeyed = {}, [], []
    for pid, key, unit, state, found in twice:
        parts = key.split(":")
        if len(parts) != 4:
            continue
        group = f"pair:{unit}:{parts[3]}:{found:%Y-%m}"
        if state != OPEN:
            rekeyed.append({"pid": pid, "k": group})
        elif group in kept:
            # Merged into the group's oldest open proposal: its records move there.
            target = kept[group]
            have = set(listed[target])
            _insert(conn, ({"proposal_id": target, "record_type": t, "record_id": i}
                           for t, i in dict.fromkeys(listed[pid]) if (t, i) not in have))
            listed[target] += [r for r in listed[pid] if r not in have]
            gone.append(pid)
        else:
            kept[group] = pid
            rekeyed.append({"pid": pid, "k": group})
    _delete(conn, gone)
    if rekeyed:
        conn.execute(proposals.update().where(proposals.c.id == sa.bindparam("pid"))
                     .values(key=sa.bindparam("k")), rekeyed)
    counted = (sa.select(sa.func.count()).select_from(records)
               .where(records.c.proposal_id == proposals.c.id).scalar_subquery())
    conn.execute(proposals.update().values(record_count=counted))
    # No CREATE INDEX on SQLite recreates the table: made once the keys are the groups'.
    op.create_index('uq_problem_proposals_open', 'problem_proposals', ['rule', 'key'], unique=True, sqlite_where=sa.text("state = 'proposed'"), postgresql_where=sa.text("state = 'proposed'"))


def downgrade():
    # Read first (see upgrade: recreating problem_proposals on SQLite empties the tables referring to it).
    conn = op.get_bind()
    named = {}
    for pid, t, i in conn.execute(sa.select(records.c.proposal_id, records.c.record_type, records.c.record_id)
                                  .order_by(records.c.proposal_id, records.c.record_type, records.c.record_id)):
        listed = named.setdefault(pid, [])
        if len(listed) < 200:  # the old MAX_RECORDS
            listed.append([t, i])
    with op.batch_alter_table('problem_proposal_records', schema=None) as batch_op:
        batch_op.drop_index('ix_problem_proposal_records_record')
    op.drop_table('problem_proposal_records')

    op.drop_index('uq_problem_proposals_open', 'problem_proposals', sqlite_where=sa.text("state = 'proposed'"), postgresql_where=sa.text("state = 'proposed'"))
    with op.batch_alter_table('problem_proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('records', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.drop_index('ix_problem_proposals_rule_key')
        batch_op.drop_index('ix_problem_proposals_state_found')

    if named:
        conn.execute(proposals.update().where(proposals.c.id == sa.bindparam("pid"))
                     .values(records=sa.bindparam("r")), [{"pid": p, "r": r} for p, r in named.items()])
    # (rule, key) unique again: a decided group's second proposal keeps its own key.
    seen, renamed = set(), []
    for pid, rule, key in conn.execute(sa.select(proposals.c.id, proposals.c.rule, proposals.c.key)
                                       .order_by(proposals.c.id)):
        if (rule, key) in seen:
            renamed.append({"pid": pid, "k": f"{key}#{pid}"[:200]})
        seen.add((rule, key))
    if renamed:
        conn.execute(proposals.update().where(proposals.c.id == sa.bindparam("pid"))
                     .values(key=sa.bindparam("k")), renamed)

    with op.batch_alter_table('problem_proposals', schema=None) as batch_op:
        batch_op.alter_column('records', server_default=None)
        batch_op.create_unique_constraint(batch_op.f('uq_problem_proposals_rule_key'), ['rule', 'key'])
        batch_op.drop_column('record_count')

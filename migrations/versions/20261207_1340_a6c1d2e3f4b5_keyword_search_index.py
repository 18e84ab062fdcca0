"""Keyword search answered by an index: grams of the searched columns (registry/kernel/search.py)

SQLite: an FTS5 table per list (contentless, rowids only) of the unigrams and bigrams of the searched columns up
to a mark (records above it are searched without the index until the task queue's catch-up indexes them: a
trigger on INSERT made bulk inserts 2.5x slower), kept exact by triggers on updates of those columns and deletes;
PostgreSQL: a GIN index over registry_grams(col1 || chr(1) || col2 …). Trigram indexes were not used: they cannot
find the two-character names most people have.

The statements are written out here (a copy of registry/kernel/search.py at this revision), so that a later change to
the searched columns is a new migration, not a different past.

Revision ID: a6c1d2e3f4b5
Revises: 3f8e1c2d9a47
Create Date: 2026-12-07 13:40:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a6c1d2e3f4b5'
down_revision = '3f8e1c2d9a47'
branch_labels = None
depends_on = None

SEARCHED = {
    "placements": ("person_name", "employer"),
    "purchases": ("seller_name", "buyer_name", "product", "evidence_no"),
    "exchanges": ("person_name", "receiving_unit", "sending_unit"),
}

PG_FUNCTION = r"""
CREATE OR REPLACE FUNCTION registry_grams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr($1, i, 1) AS g FROM generate_series(1, length($1)) AS i
    UNION ALL
    SELECT substr($1, i, 2) FROM generate_series(1, length($1) - 1) AS i
  ) AS grams
$$
"""


def _sqlite_grams(table, row):
    text = " || char(1) || ".join(f"lower({row}.{c})" for c in SEARCHED[table])
    return (
        "(SELECT group_concat(hex(substr(v.x, j.key + 1, 1)) || ' ' || hex(substr(v.x, j.key + 1, 2)), ' ') "
        f"FROM (SELECT {text} AS x) AS v, "
        "json_each('[' || substr(replace(printf('%.*c', length(v.x), '0'), '0', ',0'), 2) || ']') AS j)"
    )


def _sqlite_create(table):
    fts = f"{table}_search"
    columns = ", ".join(SEARCHED[table])
    indexed = f"WHEN old.id <= (SELECT mark FROM {fts}_mark)"
    insert = f"INSERT INTO {fts}(rowid, grams) VALUES (new.id, {_sqlite_grams(table, 'new')});"
    delete = f"INSERT INTO {fts}({fts}, rowid, grams) VALUES ('delete', old.id, {_sqlite_grams(table, 'old')});"
    lower = f"UPDATE {fts}_mark SET mark = min(mark, coalesce((SELECT max(id) FROM {table}), 0));"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(grams, content='', columnsize=0, detail=none, tokenize='ascii')",
        f"CREATE TABLE {fts}_mark (mark INTEGER NOT NULL)",
        # No INSERT trigger: new records lie above the mark until the task queue's catch_up indexes them.
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {columns} ON {table} {indexed} BEGIN {delete} {insert} END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} {indexed} BEGIN {delete} {lower} END",
        f"INSERT INTO {fts}(rowid, grams) SELECT new.id, {_sqlite_grams(table, 'new')} FROM {table} AS new",
        f"INSERT INTO {fts}_mark (mark) SELECT coalesce(max(id), 0) FROM {table}",
    ]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # A schema reset that drops tables (the tests') leaves functions behind, possibly a later revision's.
        op.execute("DROP FUNCTION IF EXISTS registry_grams(text) CASCADE")
        op.execute(PG_FUNCTION)
        for table, columns in SEARCHED.items():
            text = " || chr(1) || ".join(columns)
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (registry_grams({text}))")
            # Statistics of the new expression (its most common grams), or the planner cannot weigh the index.
            op.execute(f"ANALYZE {table}")
    else:
        for table in SEARCHED:
            for statement in _sqlite_create(table):
                op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in SEARCHED:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
        op.execute("DROP FUNCTION IF EXISTS registry_grams(text)")
    else:
        for table in SEARCHED:
            fts = f"{table}_search"
            for suffix in ("ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {fts}_mark")
            op.execute(f"DROP TABLE IF EXISTS {fts}")

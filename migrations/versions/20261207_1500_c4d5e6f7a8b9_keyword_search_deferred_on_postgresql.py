"""Keyword search on PostgreSQL: grams kept in a table of their own, filled behind the writes

The GIN index over registry_grams(...) of the searched columns made each inserted placement ~85 µs slower (100,000
rows: 0.9 s -> 9.2 s), as each row's ~25 grams went into the index inside the insert; an import of 100,000
placements would have taken half as long again. Now an insert, COPY or update only queues the record's id
(<table>_search_pending, one statement-level trigger per statement, fed from its transition table), and
registry.kernel.search.catch_up (the task queue, every minute) writes the grams of the queued records into <table>_search
(id, grams) with its GIN index. A search takes the index's candidates and every queued record; deletes remove both
at once. SQLite is unchanged (its FTS5 index and mark, a6c1d2e3f4b5).

registry_grams becomes a PL/pgSQL loop (15 µs a row instead of a set-returning SQL function). Functions are
created OR REPLACE, with an unnamed parameter as before: the tests' schema reset drops tables, not functions.

Revision ID: c4d5e6f7a8b9
Revises: 5b7e2c9d4f10
Create Date: 2026-12-07 15:00:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4d5e6f7a8b9'
down_revision = '5b7e2c9d4f10'
branch_labels = None
depends_on = None

SEARCHED = {
    "placements": ("person_name", "employer"),
    "purchases": ("seller_name", "buyer_name", "product", "evidence_no"),
    "exchanges": ("person_name", "receiving_unit", "sending_unit"),
}

GRAMS = r"""
CREATE OR REPLACE FUNCTION registry_grams(text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  grams text[] := string_to_array($1, NULL);
BEGIN
  FOR i IN 1 .. length($1) - 1 LOOP
    grams := grams || substr($1, i, 2);
  END LOOP;
  RETURN coalesce(grams, '{}');
END
$$
"""

OLD_GRAMS = r"""
CREATE OR REPLACE FUNCTION registry_grams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr($1, i, 1) AS g FROM generate_series(1, length($1)) AS i
    UNION ALL
    SELECT substr($1, i, 2) FROM generate_series(1, length($1) - 1) AS i
  ) AS grams
$$
"""


def _text(table):
    return " || chr(1) || ".join(SEARCHED[table])


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION registry_grams(text) CASCADE")  # and the expression indexes built on it
    op.execute(GRAMS)
    for table in SEARCHED:
        name = f"{table}_search"
        op.execute(f"CREATE TABLE {name} (id integer PRIMARY KEY, grams text[] NOT NULL)")
        op.execute(f"CREATE TABLE {name}_pending (id integer PRIMARY KEY)")
        op.execute(f"INSERT INTO {name} (id, grams) SELECT id, registry_grams({_text(table)}) FROM {table}")
        op.execute(f"CREATE INDEX {name}_grams ON {name} USING gin (grams)")
        op.execute(f"""
            CREATE OR REPLACE FUNCTION {name}_queue() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO {name}_pending (id) SELECT id FROM changed ON CONFLICT DO NOTHING;
              RETURN NULL;
            END $$""")
        op.execute(f"""
            CREATE OR REPLACE FUNCTION {name}_forget() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              DELETE FROM {name} WHERE id IN (SELECT id FROM gone);
              DELETE FROM {name}_pending WHERE id IN (SELECT id FROM gone);
              RETURN NULL;
            END $$""")
        for event in ("INSERT", "UPDATE"):
            op.execute(f"CREATE TRIGGER {name}_{event.lower()} AFTER {event} ON {table} "
                       f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {name}_queue()")
        op.execute(f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} "
                   f"REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {name}_forget()")
        op.execute(f"ANALYZE {name}")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in SEARCHED:
        name = f"{table}_search"
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{event} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {name}_queue()")
        op.execute(f"DROP FUNCTION IF EXISTS {name}_forget()")
        op.execute(f"DROP TABLE IF EXISTS {name}_pending")
        op.execute(f"DROP TABLE IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS registry_grams(text)")
    op.execute(OLD_GRAMS)
    for table in SEARCHED:
        op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (registry_grams({_text(table)}))")

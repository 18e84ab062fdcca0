"""Keyword search (``?q=``) over the long lists, answered by an index on both engines, with exactly the results of
the ``LIKE '%q%'`` it stands in front of.

Names are Chinese and most have two or three characters: trigram indexes (SQLite FTS5's ``trigram`` tokenizer,
PostgreSQL's ``pg_trgm``) cannot find a query shorter than three characters (“王芳”, “王”) and fall back to reading
every row. So a record is indexed by the *unigrams and bigrams* of its searched columns (joined by ``SEPARATOR``):
any text containing the query contains each of the query's bigrams (a one-character query: that character), so the
index gives a superset of the matches, and the same LIKE as before, applied to those candidates only, keeps exactly
the rows it always kept.

- SQLite: an FTS5 table ``<table>_search`` (contentless, ``detail=none``: rowids only, no positions), one
  document per record whose tokens are the grams' UTF-8 bytes in hex (``ascii`` tokenizer: one gram, one token;
  grams of ASCII letters lowered, as SQLite's LIKE ignores their case). Inserts carry no trigger: a trigger on an
  INSERT made a 20,000-row bulk insert 2.5x slower (SQLite then keeps a statement journal per row and FTS5 flushes
  its pending terms at every statement). The index covers the records up to ``<table>_search_mark.mark``; a search
  also looks at every record above it (new since the last ``catch_up``, which the task queue runs every minute
  and which takes 20,000 records per short transaction). Updates of a searched column and deletes of indexed
  records are rare and keep the index exact through triggers (a delete of the largest ids lowers the mark, as
  SQLite gives the next record the largest id + 1). Records are never inserted with an id below the largest.
- PostgreSQL: a table ``<table>_search`` (id, grams text[]) with a GIN index, the grams made by
  ``registry_grams(col1 || chr(1) || col2 …)`` (a PL/pgSQL function; case kept, as LIKE keeps it). Maintaining a
  GIN index inside each insert made a 100,000-row insert ten times slower, so writes only queue ids: a
  statement-level trigger on INSERT and UPDATE puts the statement's ids into ``<table>_search_pending`` (from its
  transition table: one statement per COPY or executemany), ``catch_up`` moves them into the index, and a search
  takes the index's candidates and every queued id. A delete removes the record's rows from both. (No mark as on
  SQLite: a sequence's ids are not committed in order when transactions run side by side.)

A query holding LIKE's own wildcards or escape (``%``, ``_``, a backslash) is left to the LIKE alone: what it
matches depends on each engine's escaping, which the grams do not model. The migration
``*_keyword_search_index.py`` creates both; ``SEARCHED`` lists what each table's keyword searches.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from registry.kernel.database import writing
from registry.kernel.extensions import db
from registry.kernel.web import like_pattern

#: Columns a list's keyword searches, per table (the same columns its LIKE searched).
SEARCHED = {
    "placements": ("person_name", "employer"),
    "purchases": ("seller_name", "buyer_name", "product", "evidence_no"),
    "exchanges": ("person_name", "receiving_unit", "sending_unit"),
}
#: Between two columns' texts in the indexed text: never typed, so no query gram spans two columns.
SEPARATOR = "\x01"
#: Characters that make LIKE's matching engine-dependent: such a query is answered by the LIKE alone.
WILDCARDS = frozenset("%_\\")


def fts_table(table: str) -> str:
    """The table of ``table``'s keyword index (SQLite's FTS5 table, PostgreSQL's gram table); every other part of
    the index is named after it."""
    return f"{table}_search"


def is_index_name(name: str | None) -> bool:
    """True for the parts of a keyword index that the models do not describe: the FTS5 table, its shadow tables
    and its mark (SQLite), the gram and queue tables (PostgreSQL), and the expression index of a6c1d2e3f4b5."""
    return bool(name) and any(name.startswith(fts_table(t)) or name == f"ix_{t}_search" for t in SEARCHED)


def grams(query: str, *, fold: bool) -> list[str]:
    """The grams every text containing ``query`` contains: the query itself for one character, else its bigrams;
    ``fold`` lowers ASCII letters only (what SQLite's ``lower()`` and LIKE do)."""
    if fold:
        query = "".join(c.lower() if c.isascii() else c for c in query)
    if len(query) == 1:
        return [query]
    return list(dict.fromkeys(query[i : i + 2] for i in range(len(query) - 1)))


def indexable(query: str) -> bool:
    return bool(query) and not (WILDCARDS & set(query))


def keyword(model, query: str):
    """The WHERE clause of a keyword search over ``model``'s searched columns: today's LIKE, behind the index."""
    table = model.__table__
    columns = [table.c[name] for name in SEARCHED[table.name]]
    pattern = like_pattern(query)
    like = sa.or_(*(c.like(pattern) for c in columns))
    if not indexable(query):
        return like
    if db.engine.dialect.name == "postgresql":
        name = fts_table(table.name)
        index, pending = (
            sa.table(name, sa.column("id"), sa.column("grams")),
            sa.table(f"{name}_pending", sa.column("id")),
        )
        wanted = sa.cast(postgresql.array(grams(query, fold=False)), postgresql.ARRAY(sa.Text))
        candidates = table.c.id.in_(
            sa.union_all(sa.select(index.c.id).where(index.c.grams.op("@>")(wanted)), sa.select(pending.c.id))
        )
    else:
        tokens = " ".join(g.encode().hex().upper() for g in grams(query, fold=True))
        name = fts_table(table.name)
        indexed = sa.select(sa.literal_column("rowid")).select_from(sa.table(name))
        mark = sa.select(sa.literal_column("mark")).select_from(sa.table(f"{name}_mark")).scalar_subquery()
        # One IN over both parts (UNION ALL), not an OR of two conditions: with the OR, SQLite walked the list's
        # order index checking every row; with one IN it reads the candidates by rowid and sorts the few found.
        above = table.alias("unindexed")
        candidates = table.c.id.in_(
            sa.union_all(
                indexed.where(sa.literal_column(name).match(tokens)), sa.select(above.c.id).where(above.c.id > mark)
            )
        )
    return sa.and_(candidates, like)


#: Records indexed per transaction by ``catch_up`` (about half a second of SQLite's write lock).
CATCH_UP_CHUNK = 20_000


def catch_up(engine=None, *, chunk: int = CATCH_UP_CHUNK) -> int:
    """Index the records added since the last run (SQLite; PostgreSQL's GIN index needs nothing), a chunk per
    short write transaction, so other writers wait at most one chunk. Returns how many were indexed."""
    engine = engine or db.engine
    if engine.dialect.name == "postgresql":
        return _catch_up_pg(engine, chunk)
    done = 0
    for table in SEARCHED:
        name = fts_table(table)
        while True:
            with writing(), engine.begin() as conn:
                mark = conn.exec_driver_sql(f"SELECT mark FROM {name}_mark").scalar_one()
                top = conn.exec_driver_sql(
                    f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT ?)", (mark, chunk)
                ).scalar()
                if top is None:
                    break
                done += conn.exec_driver_sql(
                    f"INSERT INTO {name}(rowid, grams) SELECT new.id, {sqlite_tokens(table)} FROM {table} AS new "
                    "WHERE new.id > ? AND new.id <= ?",
                    (mark, top),
                ).rowcount
                conn.exec_driver_sql(f"UPDATE {name}_mark SET mark = ?", (top,))
    return done


def _catch_up_pg(engine, chunk: int) -> int:
    """Move queued ids into the GIN-indexed gram table, ``chunk`` per transaction; ids another run holds are
    skipped (SKIP LOCKED), ids of uncommitted writes are not seen yet and wait for the next run."""
    done = 0
    for table in SEARCHED:
        name, text = fts_table(table), " || chr(1) || ".join(f"t.{c}" for c in SEARCHED[table])
        while True:
            with engine.begin() as conn:
                taken, written = conn.exec_driver_sql(
                    f"WITH batch AS (DELETE FROM {name}_pending WHERE id IN (SELECT id FROM {name}_pending "
                    "ORDER BY id LIMIT %(chunk)s FOR UPDATE SKIP LOCKED) RETURNING id), "
                    f"written AS (INSERT INTO {name} (id, grams) SELECT t.id, registry_grams({text}) "
                    f"FROM {table} AS t JOIN batch USING (id) "
                    "ON CONFLICT (id) DO UPDATE SET grams = excluded.grams RETURNING 1) "
                    "SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM written)",
                    {"chunk": chunk},
                ).one()
            done += written
            if not taken:
                break
    return done


def unindexed(table: str) -> int:
    """Records of ``table`` a search reads without the index: above the mark (SQLite), queued (PostgreSQL)."""
    name = fts_table(table)
    if db.engine.dialect.name == "postgresql":
        return db.session.execute(sa.text(f"SELECT count(*) FROM {name}_pending")).scalar_one()
    return db.session.execute(
        sa.text(f"SELECT count(*) FROM {table} WHERE id > (SELECT mark FROM {name}_mark)")
    ).scalar_one()


def sqlite_tokens(table: str, row: str = "new") -> str:
    """SQL giving the token text of a ``table`` row aliased ``row`` on SQLite: what the migration's triggers write
    (a copy; the test of the index rebuilds it from the rows with this and compares the vocabularies)."""
    text = " || char(1) || ".join(f"lower({row}.{c})" for c in SEARCHED[table])
    return (
        "(SELECT group_concat(hex(substr(v.x, j.key + 1, 1)) || ' ' || hex(substr(v.x, j.key + 1, 2)), ' ') "
        f"FROM (SELECT {text} AS x) AS v, "
        "json_each('[' || substr(replace(printf('%.*c', length(v.x), '0'), '0', ',0'), 2) || ']') AS j)"
    )

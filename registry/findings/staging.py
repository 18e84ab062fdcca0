"""Where a run of the checks puts what it found before it becomes proposals: a temporary table, filled by
``INSERT … SELECT`` from each rule's query, then compared with the proposals by set-based statements only.

One row per (group, record): ``rule`` and ``key`` name the group (one county's records of one rule and period),
``unit_id`` its county. A row marked ``aside`` is named for context only (the project of an idle-money group, the
other county's placement of a person counted twice): it never makes a group new by itself and leaves with the
records it accompanies (those of the same ``subject``, or the whole group when it has none). ``partner_id`` is
a second record of the same table shown aside (the runner adds its row). ``amount_fen`` sums to the group's amount.
"""

import sqlalchemy as sa

FOUND = sa.Table(
    "findings_found",
    sa.MetaData(),
    sa.Column("rule", sa.String(40), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("unit_id", sa.Integer, nullable=False),
    sa.Column("record_type", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("aside", sa.Integer, nullable=False, server_default="0"),
    sa.Column("subject", sa.Integer),
    sa.Column("amount_fen", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("partner_id", sa.Integer),
    prefixes=["TEMPORARY"],
)

#: Columns a rule's SELECT gives, in this order (missing trailing ones: NULL or their default).
COLUMNS = ("rule", "key", "unit_id", "record_type", "record_id", "aside", "subject", "amount_fen", "partner_id")


class Staging:
    """The temporary table for one run, on the session's connection (dropped at the end; a failed run's table
    goes with its rolled-back transaction, and a leftover one is dropped before a new run)."""

    def __init__(self, session):
        self.conn = session.connection()
        # The temporary schema named: never a table of the database's own by that name.
        schema = "pg_temp" if self.conn.dialect.name == "postgresql" else "temp"
        self._drop = f"DROP TABLE IF EXISTS {schema}.findings_found"

    def __enter__(self):
        self.conn.exec_driver_sql(self._drop)
        FOUND.create(self.conn)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.conn.exec_driver_sql(self._drop)
        return False

    def index(self) -> None:
        """Index the rows once they are all staged (one build instead of an update per inserted row): the
        comparisons with the proposals look up a group's record."""
        self.conn.exec_driver_sql(
            'CREATE INDEX ix_findings_found_group ON findings_found (rule, "key", record_type, record_id)'
        )
        if self.conn.dialect.name == "postgresql":
            # Autovacuum never analyses a temporary table: without statistics the planner guesses its size.
            self.conn.exec_driver_sql("ANALYZE findings_found")

    def add(self, select: sa.Select) -> None:
        """Stage the rows of ``select`` (its columns: ``COLUMNS``, in order, as many as it names)."""
        names = COLUMNS[: len(select.selected_columns)]
        self.conn.execute(FOUND.insert().from_select(names, select))

    def add_rows(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(FOUND.insert(), rows)

    def execute(self, statement, params=None):
        return self.conn.execute(statement, params)


def text_of(column):
    """A column as text, for keys built in SQL ('project:' || id)."""
    return sa.cast(column, sa.String)

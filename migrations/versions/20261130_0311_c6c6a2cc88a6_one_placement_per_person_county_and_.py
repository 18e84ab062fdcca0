"""One placement per person, county and start date; the fund ledger rule (拨付 ≤ 到位) held by the database

Revision ID: c6c6a2cc88a6
Revises: c60e3938ceb2
Create Date: 2026-11-30 03:11:08.825074

Both rules were checked only by the services, which two concurrent requests could each pass. The migration
refuses to run on data that already breaks them, listing what to fix, rather than deleting anything itself.
"""
from alembic import op
import sqlalchemy as sa

import registry.kernel.database


# revision identifiers, used by Alembic.
revision = 'c6c6a2cc88a6'
down_revision = 'c60e3938ceb2'
branch_labels = None
depends_on = None

#: Prefix of the database's refusal; registry.projects.services recognises it.
RULE = "fund_ledger_rule"

#: Running balance (到位 − 拨付, arrivals of a day counted with that day) of one project's source, per date;
#: the default window frame includes a date's peers, so each row carries the balance at the end of its day.
BALANCES = """
    SELECT occurred_on, SUM(CASE stage WHEN 'arrived' THEN amount_fen ELSE -amount_fen END)
           OVER (ORDER BY occurred_on) AS balance
    FROM fund_transactions
    WHERE project_id = {project} AND source = {source} AND stage IN ('arrived', 'disbursed')
"""

#: Every (project, source, first day) whose cumulative 拨付 exceeds cumulative 到位, for the pre-check.
BROKEN_LEDGERS = """
    SELECT p.code, t.source, MIN(t.occurred_on), MAX(-t.balance)
    FROM (
        SELECT project_id, source, occurred_on,
               SUM(CASE stage WHEN 'arrived' THEN amount_fen ELSE -amount_fen END)
               OVER (PARTITION BY project_id, source ORDER BY occurred_on) AS balance
        FROM fund_transactions WHERE stage IN ('arrived', 'disbursed')
    ) t JOIN projects p ON p.id = t.project_id
    WHERE t.balance < 0
    GROUP BY p.code, t.source
    ORDER BY p.code, t.source
"""

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION fund_ledger_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ledger record;
    broken record;
BEGIN
    FOR ledger IN
        SELECT NEW.project_id AS project_id, NEW.source AS source
            WHERE TG_OP = 'INSERT' AND NEW.stage = 'disbursed' OR TG_OP = 'UPDATE'
        UNION
        SELECT OLD.project_id, OLD.source WHERE TG_OP = 'DELETE' AND OLD.stage = 'arrived' OR TG_OP = 'UPDATE'
    LOOP
        -- Writers of one ledger queue here, so each checks it with the previous one's rows committed (a plain
        -- check under READ COMMITTED would not see a concurrent transaction's payments). NO KEY UPDATE: the
        -- writers already share a KEY SHARE lock on the row (the foreign key), which FOR UPDATE would deadlock on.
        PERFORM 1 FROM projects WHERE id = ledger.project_id FOR NO KEY UPDATE;
        SELECT occurred_on, -balance AS excess INTO broken
        FROM ({BALANCES.format(project="ledger.project_id", source="ledger.source")}) b
        WHERE balance < 0 ORDER BY occurred_on LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = '{RULE}',
                MESSAGE = format('{RULE}: project %s, %s: 拨付 exceeds 到位 on %s by %s fen',
                                 ledger.project_id, ledger.source, broken.occurred_on, broken.excess);
        END IF;
    END LOOP;
    RETURN NULL;
END $$
"""

# Checked at commit, so a transaction may pass through a broken state on its way (delete a whole ledger row by
# row, load arrivals after disbursements) but can never commit one.
POSTGRES_TRIGGER = f"""
CREATE CONSTRAINT TRIGGER {RULE} AFTER INSERT OR UPDATE OR DELETE ON fund_transactions
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fund_ledger_check()
"""


def _sqlite_trigger(name: str, event: str, when: str, ledgers: list[tuple[str, str]]) -> str:
    """SQLite has no deferred triggers: each row is checked as it is written (a ledger emptied in one statement
    must lose its 拨付 before its 到位, or go with its project)."""
    broken = " OR ".join(
        f"EXISTS (SELECT 1 FROM ({BALANCES.format(project=project, source=source)}) WHERE balance < 0)"
        for project, source in ledgers
    )
    return (
        f"CREATE TRIGGER {name} AFTER {event} ON fund_transactions WHEN ({when}) AND ({broken}) "
        f"BEGIN SELECT RAISE(ABORT, '{RULE}: 累计拨付超过累计到位'); END"
    )


SQLITE_TRIGGERS = {
    f"{RULE}_insert": _sqlite_trigger(f"{RULE}_insert", "INSERT", "NEW.stage = 'disbursed'",
                                      [("NEW.project_id", "NEW.source")]),
    f"{RULE}_update": _sqlite_trigger(
        f"{RULE}_update", "UPDATE OF project_id, source, stage, amount_fen, occurred_on", "1",
        [("NEW.project_id", "NEW.source"), ("OLD.project_id", "OLD.source")],
    ),
    # A project deleted with its transactions (ON DELETE CASCADE) is gone before they are: nothing to check.
    f"{RULE}_delete": _sqlite_trigger(
        f"{RULE}_delete", "DELETE",
        "OLD.stage = 'arrived' AND EXISTS (SELECT 1 FROM projects WHERE id = OLD.project_id)",
        [("OLD.project_id", "OLD.source")],
    ),
}


def _refuse_duplicates(connection) -> None:
    duplicates = connection.execute(sa.text(
        "SELECT p.origin_county_id, p.start_date, p.id_masked, COUNT(*), MIN(p.id), MAX(p.id) FROM placements p "
        "GROUP BY p.id_fingerprint, p.origin_county_id, p.start_date, p.id_masked HAVING COUNT(*) > 1 "
        "ORDER BY p.origin_county_id, p.start_date"
    )).all()
    if duplicates:
        lines = [f"  户籍县 id {county}，就业开始 {start}，身份证号 {masked}：{count} 条（编号 {first} … {last}）"
                 for county, start, masked, count, first, last in duplicates[:50]]
        more = f"\n  …… 共 {len(duplicates)} 组" if len(duplicates) > 50 else ""
        raise RuntimeError(
            "劳务协作中有同一人员、同一户籍县、同一就业开始日期的重复记录，请先合并或删除后再升级数据库：\n"
            + "\n".join(lines) + more
        )


def _refuse_broken_ledgers(connection) -> None:
    broken = connection.execute(sa.text(BROKEN_LEDGERS)).all()
    if broken:
        lines = [f"  项目 {code}，资金来源 {source}：自 {day} 起累计拨付超过累计到位，最多超出 {excess / 100:.2f} 元"
                 for code, source, day, excess in broken[:50]]
        more = f"\n  …… 共 {len(broken)} 处" if len(broken) > 50 else ""
        raise RuntimeError(
            "以下项目的资金流水违反“累计拨付不超过累计到位”规则，请先更正后再升级数据库：\n" + "\n".join(lines) + more
        )


def upgrade():
    connection = op.get_bind()
    _refuse_duplicates(connection)
    _refuse_broken_ledgers(connection)
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_placements_person_start', ['id_fingerprint', 'origin_county_id', 'start_date'])
    if connection.dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for sql in SQLITE_TRIGGERS.values():
            op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {RULE} ON fund_transactions")
        op.execute("DROP FUNCTION IF EXISTS fund_ledger_check()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.drop_constraint('uq_placements_person_start', type_='unique')

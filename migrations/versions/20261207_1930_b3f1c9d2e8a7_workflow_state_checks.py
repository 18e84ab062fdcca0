"""Workflow states held by the database: CHECK constraints listing the states a report, a report's step, an asset,
an asset's state change, an East confirmation and an unlock request may hold (the problems' and the notices' had
them already). Every row keeps its value: the application only ever wrote these states.

Revision ID: b3f1c9d2e8a7
Revises: e2b7a9c4d1f3
Create Date: 2026-12-07 19:30:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b3f1c9d2e8a7"
down_revision = "e2b7a9c4d1f3"
branch_labels = None
depends_on = None

REPORT = ("draft", "submitted", "reviewed", "approved", "returned", "unlocked")
ASSET = ("normal", "idle", "inefficient", "damaged", "disposed")
CONFIRMATION = ("confirmed", "disputed", "answered")
UNLOCK = ("pending", "granted", "refused")

#: table -> [(constraint name, column, states, may be NULL)]
CHECKS = {
    "quarter_reports": [("state_known", "state", REPORT, False)],
    "report_steps": [
        ("from_state_known", "from_state", REPORT, True),
        ("to_state_known", "to_state", REPORT, True),
    ],
    "assets": [("state_known", "state", ASSET, False)],
    "asset_state_changes": [
        ("to_state_known", "to_state", ASSET, False),
        ("from_state_known", "from_state", ASSET, True),
    ],
    "report_confirmations": [("state_known", "state", CONFIRMATION, False)],
    "unlock_requests": [("state_known", "state", UNLOCK, False)],
}


def _condition(column: str, states: tuple, nullable: bool) -> str:
    text = f"{column} IN ({', '.join(repr(s) for s in states)})"
    return f"{column} IS NULL OR {text}" if nullable else text


def upgrade():
    # On SQLite batch mode copies each table with its rows (and its named CHECKs) into one that has the new ones.
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, states, nullable in checks:
                batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), _condition(column, states, nullable))


def downgrade():
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _column, _states, _nullable in checks:
                batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")

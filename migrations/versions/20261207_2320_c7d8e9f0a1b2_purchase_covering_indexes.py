"""Purchases: the two indexes a quarter's consumption figures read cover those figures, so that a province's
year-to-date sums are answered from an index alone (issue 23: the province dashboard's first view).

- ``ix_purchases_county_date`` (seller county, date) also holds the pairing, channel, counting type and amount: the
  sums by programme (joined to the pairing) read no table row;
- ``ix_purchases_channel_totals`` (channel, counting type, amount) also holds the county and the date: the totals by
  channel of a county set and period are one scan of it, where SQLite's planner chose it for the GROUP BY and then
  read every purchase of five years from the table (0.43 s on a province).

Revision ID: c7d8e9f0a1b2
Revises: b3f1c9d2e8a7
Create Date: 2026-12-07 23:20:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c7d8e9f0a1b2"
down_revision = "b3f1c9d2e8a7"
branch_labels = None
depends_on = None

NEW = {
    "ix_purchases_county_date": [
        "seller_county_id", "purchased_on", "pairing_id", "channel_id", "counting_type", "amount_fen",
    ],
    "ix_purchases_channel_totals": ["channel_id", "counting_type", "amount_fen", "seller_county_id", "purchased_on"],
}  # fmt: skip
OLD = {
    "ix_purchases_county_date": ["seller_county_id", "purchased_on"],
    "ix_purchases_channel_totals": ["channel_id", "counting_type", "amount_fen"],
}


def _replace(indexes: dict) -> None:
    for name, columns in indexes.items():
        op.drop_index(name, table_name="purchases")
        op.create_index(name, "purchases", columns, unique=False)


def upgrade():
    _replace(NEW)


def downgrade():
    _replace(OLD)

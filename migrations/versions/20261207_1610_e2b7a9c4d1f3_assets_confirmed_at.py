"""Assets: when a 待核实 record was confirmed (confirmed_at), so that a quarterly report counts the records still
待核实 at its cut-off, not those still 待核实 today

Records confirmed before this revision get the time of their 核实 audit event (``核实资产 …``); records never
confirmed keep NULL.

Revision ID: e2b7a9c4d1f3
Revises: c4d5e6f7a8b9
Create Date: 2026-12-07 16:10:00

"""

import sqlalchemy as sa
from alembic import op

import registry.kernel.database

# revision identifiers, used by Alembic.
revision = "e2b7a9c4d1f3"
down_revision = "c4d5e6f7a8b9"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("assets", sa.Column("confirmed_at", registry.kernel.database.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE assets SET confirmed_at = (SELECT MAX(e.occurred_at) FROM audit_events e "
        "WHERE e.entity_type = 'assets' AND e.entity_id = assets.id AND e.summary LIKE '核实资产 %') "
        "WHERE needs_review = false"
    )


def downgrade():
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_column("confirmed_at")

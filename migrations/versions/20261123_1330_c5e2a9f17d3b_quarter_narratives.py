"""Quarter narratives: 亮点 / 问题 / 下步打算 of a unit's quarterly report

Revision ID: c5e2a9f17d3b
Revises: b7d1c0a4e2f9
Create Date: 2026-11-23 13:30:00

"""

import sqlalchemy as sa
from alembic import op

import registry.kernel.database

# revision identifiers, used by Alembic.
revision = "c5e2a9f17d3b"
down_revision = "b7d1c0a4e2f9"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "quarter_narratives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.Integer(), nullable=False),
        sa.Column("highlights", sa.Text(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("next_steps", sa.Text(), nullable=False),
        sa.Column("updated_by_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", registry.kernel.database.UTCDateTime(), nullable=False),
        sa.Column("updated_at", registry.kernel.database.UTCDateTime(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("quarter BETWEEN 1 AND 4", name=op.f("ck_quarter_narratives_quarter_range")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_quarter_narratives_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarter_narratives")),
        sa.UniqueConstraint("unit_id", "year", "quarter", name="uq_quarter_narratives_unit_quarter"),
    )


def downgrade():
    op.drop_table("quarter_narratives")

"""Login throttles: one failure counter per (username, address) and per address, replacing one row per attempt

The old login_attempts rows only fed the throttle (successful logins are in the audit log); they are dropped, so
every pending delay ends with the upgrade.

Revision ID: b4eef9b71b0e
Revises: c5e2a9f17d3b
Create Date: 2026-11-30 02:50:52

"""

import sqlalchemy as sa
from alembic import op

import registry.kernel.database

# revision identifiers, used by Alembic.
revision = "b4eef9b71b0e"
down_revision = "c5e2a9f17d3b"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("delays", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", registry.kernel.database.UTCDateTime(), nullable=True),
        sa.Column("locked_until", registry.kernel.database.UTCDateTime(), nullable=True),
        sa.Column("expires_at", registry.kernel.database.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttles")),
        sa.UniqueConstraint("username", "ip", name=op.f("uq_login_throttles_username")),
    )
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_throttles_expires_at"), ["expires_at"], unique=False)

    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_ip_at")
        batch_op.drop_index("ix_login_attempts_username_at")
    op.drop_table("login_attempts")


def downgrade():
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", registry.kernel.database.UTCDateTime(), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempts_username_at", ["username", "attempted_at"], unique=False)
        batch_op.create_index("ix_login_attempts_ip_at", ["ip", "attempted_at"], unique=False)

    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttles_expires_at"))
    op.drop_table("login_throttles")

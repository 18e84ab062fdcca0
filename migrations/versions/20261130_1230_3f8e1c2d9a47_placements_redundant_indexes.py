"""Placements: drop the two indexes that repeat the first columns of another

ix_placements_person (id_fingerprint, origin_county_id) is the start of the unique key
uq_placements_person_start (id_fingerprint, origin_county_id, start_date), and ix_placements_destination_class
(destination_class) the start of ix_placements_destination_start; every look-up they served, the longer index
serves. Each index is written on every insert: a 100,000-placement import spent about a fifth of its INSERT time
on these two.

Revision ID: 3f8e1c2d9a47
Revises: 078cf6d0e5e8
Create Date: 2026-11-30 12:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3f8e1c2d9a47'
down_revision = '078cf6d0e5e8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.drop_index('ix_placements_person')
        batch_op.drop_index('ix_placements_destination_class')


def downgrade():
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.create_index('ix_placements_destination_class', ['destination_class'], unique=False)
        batch_op.create_index('ix_placements_person', ['id_fingerprint', 'origin_county_id'], unique=False)

"""Figures at a province's volume: people in work per month (placement_months: roaring bitmaps of person ids per
county, month, pairing and destination; placement_month_spans: up to which month each county's rows are built)
and data versions per unit (data_versions), which the figure caches are keyed on

The rows are derived. They start empty: until a county's rows are built, its figures are counted from the
placements themselves (exact, slower). ``flask figures refresh`` (run by ``make run`` after the upgrade, and by the
nightly task) builds what is missing; any placement write rebuilds its county's months.

Revision ID: 5b7e2c9d4f10
Revises: a76555f3f1af
Create Date: 2026-12-07 14:20:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b7e2c9d4f10'
down_revision = 'a76555f3f1af'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'data_versions',
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('unit_id', name=op.f('pk_data_versions')),
    )
    op.create_table(
        'placement_months',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('origin_county_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.Integer(), nullable=False),
        sa.Column('pairing_id', sa.Integer(), nullable=True),
        sa.Column('destination_class', sa.Enum('east_partner', 'other_province', 'in_province', 'in_county', 'workshop', 'public_welfare', name='destination', native_enum=False, length=20), nullable=False),
        sa.Column('people', sa.LargeBinary(), nullable=False),
        sa.Column('lifted', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['origin_county_id'], ['units.id'], name=op.f('fk_placement_months_origin_county_id_units')),
        sa.ForeignKeyConstraint(['pairing_id'], ['pairings.id'], name=op.f('fk_placement_months_pairing_id_pairings')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_placement_months')),
    )
    with op.batch_alter_table('placement_months', schema=None) as batch_op:
        batch_op.create_index('ix_placement_months_county_month', ['origin_county_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_placement_months_pairing_id'), ['pairing_id'], unique=False)
    op.create_table(
        'placement_month_spans',
        sa.Column('origin_county_id', sa.Integer(), nullable=False),
        sa.Column('last_month', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['origin_county_id'], ['units.id'], name=op.f('fk_placement_month_spans_origin_county_id_units')),
        sa.PrimaryKeyConstraint('origin_county_id', name=op.f('pk_placement_month_spans')),
    )


def downgrade():
    op.drop_table('data_versions')
    op.drop_table('placement_month_spans')
    with op.batch_alter_table('placement_months', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_months_pairing_id'))
        batch_op.drop_index('ix_placement_months_county_month')
    op.drop_table('placement_months')

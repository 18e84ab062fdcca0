"""Disclosure notices (公告公示): notices with their frozen snapshot and PDF, covered projects, postings, complaints,
and the public pages' per-address request counters

Revision ID: b278909619aa
Revises: 5456cac6c055
Create Date: 2026-11-30 05:56:54.300903

"""
from alembic import op
import sqlalchemy as sa

import registry.kernel.database


# revision identifiers, used by Alembic.
revision = 'b278909619aa'
down_revision = '5456cac6c055'
branch_labels = None
depends_on = None


def _window_length():
    """At least 10 days, both ends counted (end - start >= 9): date arithmetic differs between the engines."""
    if op.get_bind().dialect.name == "postgresql":
        text = "window_end - window_start >= 9"
    else:
        text = "julianday(window_end) - julianday(window_start) >= 9"
    return sa.CheckConstraint(text, name=op.f("ck_disclosure_notices_window_length"))


def upgrade():
    op.create_table('disclosure_public_hits',
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('minute', sa.BigInteger(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('ip', 'minute', name=op.f('pk_disclosure_public_hits'))
    )
    op.create_table('disclosure_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_no', sa.String(length=16), nullable=True),
    sa.Column('county_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('type', sa.Enum('annual_plan', 'arrangement', 'allocation', 'completion', name='noticetype', native_enum=False, length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('issuing_unit', sa.String(length=200), nullable=False),
    sa.Column('local_phone', sa.String(length=40), nullable=False),
    sa.Column('window_start', sa.Date(), nullable=False),
    sa.Column('window_end', sa.Date(), nullable=False),
    sa.Column('state', sa.Enum('draft', 'published', 'withdrawn', name='noticestate', native_enum=False, length=20), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('published_at', registry.kernel.database.UTCDateTime(), nullable=True),
    sa.Column('withdrawn_at', registry.kernel.database.UTCDateTime(), nullable=True),
    sa.Column('withdrawal_reason', sa.Text(), nullable=False),
    sa.Column('created_at', registry.kernel.database.UTCDateTime(), nullable=False),
    sa.Column('updated_at', registry.kernel.database.UTCDateTime(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("state <> 'withdrawn' OR withdrawal_reason <> ''", name=op.f('ck_disclosure_notices_withdrawn_has_reason')),
    sa.CheckConstraint("state = 'draft' OR (snapshot IS NOT NULL AND public_no IS NOT NULL AND published_at IS NOT NULL)", name=op.f('ck_disclosure_notices_published_has_snapshot')),
    sa.CheckConstraint("state IN ('draft', 'published', 'withdrawn')", name=op.f('ck_disclosure_notices_state_known')),
    _window_length(),
    sa.ForeignKeyConstraint(['county_id'], ['units.id'], name=op.f('fk_disclosure_notices_county_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosure_notices')),
    sa.UniqueConstraint('public_no', name=op.f('uq_disclosure_notices_public_no'))
    )
    with op.batch_alter_table('disclosure_notices', schema=None) as batch_op:
        batch_op.create_index('ix_disclosure_notices_county_year', ['county_id', 'year'], unique=False)
        batch_op.create_index(batch_op.f('ix_disclosure_notices_state'), ['state'], unique=False)

    op.create_table('disclosure_complaints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.Enum('phone', 'letter', 'visit', 'online', 'other', name='complaintchannel', native_enum=False, length=20), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('answered_on', sa.Date(), nullable=True),
    sa.Column('created_at', registry.kernel.database.UTCDateTime(), nullable=False),
    sa.Column('updated_at', registry.kernel.database.UTCDateTime(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("(answered_on IS NULL AND answer = '') OR (answered_on IS NOT NULL AND answer <> '')", name=op.f('ck_disclosure_complaints_answer_dated')),
    sa.CheckConstraint('answered_on IS NULL OR answered_on >= received_on', name=op.f('ck_disclosure_complaints_answer_after_receipt')),
    sa.ForeignKeyConstraint(['notice_id'], ['disclosure_notices.id'], name=op.f('fk_disclosure_complaints_notice_id_disclosure_notices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosure_complaints'))
    )
    with op.batch_alter_table('disclosure_complaints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disclosure_complaints_notice_id'), ['notice_id'], unique=False)

    op.create_table('disclosure_postings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('posted_on', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('recorded_at', registry.kernel.database.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['disclosure_notices.id'], name=op.f('fk_disclosure_postings_notice_id_disclosure_notices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosure_postings'))
    )
    with op.batch_alter_table('disclosure_postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disclosure_postings_notice_id'), ['notice_id'], unique=False)

    op.create_table('disclosure_notice_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['disclosure_notices.id'], name=op.f('fk_disclosure_notice_items_notice_id_disclosure_notices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_disclosure_notice_items_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosure_notice_items')),
    sa.UniqueConstraint('notice_id', 'project_id', name='uq_disclosure_notice_items_project')
    )
    with op.batch_alter_table('disclosure_notice_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disclosure_notice_items_notice_id'), ['notice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_disclosure_notice_items_project_id'), ['project_id'], unique=False)



def downgrade():
    with op.batch_alter_table('disclosure_notice_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disclosure_notice_items_project_id'))
        batch_op.drop_index(batch_op.f('ix_disclosure_notice_items_notice_id'))

    op.drop_table('disclosure_notice_items')
    with op.batch_alter_table('disclosure_postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disclosure_postings_notice_id'))

    op.drop_table('disclosure_postings')
    with op.batch_alter_table('disclosure_complaints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disclosure_complaints_notice_id'))

    op.drop_table('disclosure_complaints')
    with op.batch_alter_table('disclosure_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disclosure_notices_state'))
        batch_op.drop_index('ix_disclosure_notices_county_year')

    op.drop_table('disclosure_notices')
    op.drop_table('disclosure_public_hits')

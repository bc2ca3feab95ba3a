"""elder mode: per-user 长辈版 preferences, tablet PINs and photos; scenario questions

Revision ID: 0004
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        # NULL = not chosen: on by default for the elder audience
        batch_op.add_column(sa.Column('elder_mode', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('font_scale', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('pin_hash', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('pin_failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('pin_locked', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('photo_path', sa.String(length=300), nullable=True))

    with op.batch_alter_table('question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scenario_json', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('question', schema=None) as batch_op:
        batch_op.drop_column('scenario_json')

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('photo_path')
        batch_op.drop_column('pin_locked')
        batch_op.drop_column('pin_failures')
        batch_op.drop_column('pin_hash')
        batch_op.drop_column('font_scale')
        batch_op.drop_column('elder_mode')

"""strict crediting (study lease) and assignments (requirements, annual targets)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'study_lease',
        sa.Column('user_id', sa.Integer(), nullable=False, autoincrement=False),
        sa.Column('token', sa.String(length=64), nullable=False, server_default=''),
        sa.Column('lesson_id', sa.Integer(), nullable=True),
        sa.Column('acquired_at', sa.DateTime(), nullable=True),
        sa.Column('last_heartbeat_at', sa.DateTime(), nullable=True),
        sa.Column('clock_started_at', sa.DateTime(), nullable=True),
        sa.Column('clock_credited', sa.Float(), nullable=False, server_default='0'),
        sa.Column('last_seq', sa.Integer(), nullable=True),
        sa.Column('day', sa.Date(), nullable=True),
        sa.Column('day_credited', sa.Float(), nullable=False, server_default='0'),
        sa.Column('version', sa.Integer(), nullable=False, server_default='1'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name='fk_study_lease_user_id_user'),
        sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], name='fk_study_lease_lesson_id_lesson'),
        sa.PrimaryKeyConstraint('user_id', name='pk_study_lease'),
    )
    op.create_table(
        'requirement',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=False),
        sa.Column('audience', sa.String(length=20), nullable=True),
        sa.Column('unit_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=False, server_default=''),
        sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['course_id'], ['course.id'], name='fk_requirement_course_id_course'),
        sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_requirement_unit_id_unit'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name='fk_requirement_created_by_id_user'),
        sa.PrimaryKeyConstraint('id', name='pk_requirement'),
    )
    op.create_index('ix_requirement_course_id', 'requirement', ['course_id'], unique=False)
    op.create_table(
        'requirement_user',
        sa.Column('requirement_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['requirement_id'], ['requirement.id'],
                                name='fk_requirement_user_requirement_id_requirement'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name='fk_requirement_user_user_id_user'),
        sa.PrimaryKeyConstraint('requirement_id', 'user_id', name='pk_requirement_user'),
    )
    op.create_index('ix_requirement_user_user_id', 'requirement_user', ['user_id'], unique=False)
    op.create_table(
        'annual_target',
        sa.Column('audience', sa.String(length=20), nullable=False),
        sa.Column('hours', sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name='fk_annual_target_updated_by_id_user'),
        sa.PrimaryKeyConstraint('audience', name='pk_annual_target'),
    )


def downgrade():
    op.drop_table('annual_target')
    op.drop_index('ix_requirement_user_user_id', table_name='requirement_user')
    op.drop_table('requirement_user')
    op.drop_index('ix_requirement_course_id', table_name='requirement')
    op.drop_table('requirement')
    op.drop_table('study_lease')

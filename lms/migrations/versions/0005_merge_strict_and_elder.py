"""merge the strict-crediting (0003) and elder-mode (0004) branches

Revision ID: 0005
Revises: 0003, 0004
"""

revision = "0005"
down_revision = ("0003", "0004")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

"""one history again: merge the branches that features added off 0001

Revision ID: 0008
Revises: 0002, 0005, 0006, 0007
"""

revision = "0008"
down_revision = ("0002", "0005", "0006", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""cvat: what an export does with images that carry an EXIF orientation (rotate / as-is)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cvat_exports", sa.Column("exif_remedy", sa.String(length=8), nullable=True))  # plain ADD COLUMN


def downgrade() -> None:
    with op.batch_alter_table("cvat_exports") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("exif_remedy")

"""cvat: a connection's share folder / cloud storage, exports that send file references

Revision ID: 0007
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cvat_connections") as batch:
        batch.add_column(sa.Column("share_root", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("cloud_storage_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("cvat_exports") as batch:
        batch.add_column(sa.Column("send_references", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("cvat_exports") as batch:
        batch.drop_column("send_references")
    with op.batch_alter_table("cvat_connections") as batch:
        batch.drop_column("cloud_storage_id")
        batch.drop_column("share_root")

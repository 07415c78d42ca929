"""CVAT round trip: connections, export records and their tasks, pull-backs

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cvat_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("org", sa.String(length=100), nullable=True),
        sa.Column("auth_kind", sa.String(length=8), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name", name="uq_cvat_connection_owner_name"),
    )
    op.create_index("ix_cvat_connections_owner_id", "cvat_connections", ["owner_id"])
    op.create_table(
        "cvat_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("server_url", sa.String(length=500), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("curation_seq", sa.Integer(), nullable=False),
        sa.Column("num_images", sa.Integer(), nullable=False),
        sa.Column("project_name", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("max_images_per_task", sa.Integer(), nullable=False),
        sa.Column("segment_size", sa.Integer(), nullable=False),
        sa.Column("image_quality", sa.Integer(), nullable=False),
        sa.Column("preload_annotations", sa.Boolean(), nullable=False),
        sa.Column("labels", JSON, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_versions.id"]),
        sa.ForeignKeyConstraint(["connection_id"], ["cvat_connections.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cvat_exports_created_by", "cvat_exports", ["created_by"])
    op.create_index("ix_cvat_exports_version_id", "cvat_exports", ["version_id"])
    op.create_table(
        "cvat_export_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(length=600), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rq_id", sa.String(length=300), nullable=True),
        sa.Column("image_ids", JSON, nullable=False),
        sa.Column("frame_names", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["export_id"], ["cvat_exports.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("export_id", "part", name="uq_cvat_export_task_part"),
    )
    op.create_index("ix_cvat_export_tasks_export_id", "cvat_export_tasks", ["export_id"])
    op.create_index("ix_cvat_export_tasks_task", "cvat_export_tasks", ["task_id"])
    op.create_table(
        "cvat_pulls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("task_ids", JSON, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("source_version_id", sa.Integer(), nullable=False),
        sa.Column("new_version_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["export_id"], ["cvat_exports.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["dataset_groups.id"]),
        sa.ForeignKeyConstraint(["source_version_id"], ["dataset_versions.id"]),
        sa.ForeignKeyConstraint(["new_version_id"], ["dataset_versions.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cvat_pulls_created_by", "cvat_pulls", ["created_by"])
    op.create_index("ix_cvat_pulls_export_id", "cvat_pulls", ["export_id"])


def downgrade() -> None:
    op.drop_table("cvat_pulls")
    op.drop_table("cvat_export_tasks")
    op.drop_table("cvat_exports")
    op.drop_table("cvat_connections")

"""curation tags as an op log: one row per edit and tag with its image ids as one blob

Revision ID: 0006
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "curation_tag_ops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("image_ids", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_versions.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_curation_tag_ops_version_seq", "curation_tag_ops", ["version_id", "seq"], unique=False)
    _carry_over_tag_rows()
    op.drop_index("ix_image_tags_version_tag", table_name="image_tags")
    op.drop_index("ix_image_tags_version_seq", table_name="image_tags")
    op.drop_table("image_tags")


def _carry_over_tag_rows() -> None:
    """Each version's present tags become one op per tag, at the version's current sequence number."""
    from datetime import UTC, datetime

    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT t.version_id, t.tag, t.image_id, coalesce(s.seq, 0) FROM image_tags t "
        "LEFT JOIN curation_seqs s ON s.version_id = t.version_id WHERE NOT t.deleted "
        "ORDER BY t.version_id, t.tag, t.image_id")).all()
    groups: dict[tuple[int, str, int], list[int]] = {}
    for version_id, tag, image_id, seq in rows:
        groups.setdefault((version_id, tag, seq), []).append(image_id)
    ops = sa.table("curation_tag_ops", sa.column("version_id"), sa.column("seq"), sa.column("tag"),
                   sa.column("present"), sa.column("count"), sa.column("image_ids"), sa.column("created_at"))
    now = datetime.now(UTC).replace(tzinfo=None)
    for (version_id, tag, seq), ids in groups.items():
        blob = _encode_ids(sorted(set(ids)))
        conn.execute(ops.insert().values(version_id=version_id, seq=seq, tag=tag, present=True, count=len(ids),
                                         image_ids=blob, created_at=now))


def _encode_ids(ids: list[int]) -> bytes:
    """The id-set blob as the product wrote it at this revision: b"I1" + zlib(level 1) of delta-encoded
    little-endian int64 (kept here so the migration does not depend on product code that may change)."""
    import struct
    import zlib

    deltas = [b - a for a, b in zip([0, *ids[:-1]], ids, strict=True)]
    return b"I1" + zlib.compress(struct.pack(f"<{len(deltas)}q", *deltas), 1)


def downgrade() -> None:
    raise NotImplementedError("tag ops cannot be turned back into per-image rows by a downgrade")

"""The format-independent lake schema: one Arrow schema per Parquet table of a version.

COCO, YOLO and CVAT are import/export formats; these tables are the internal one. Columns
that a format cannot express stay null. Nested values that queries rarely look inside
(RLE, attributes, unknown keys) are kept as JSON text so nothing in the input is lost.
"""

from __future__ import annotations

import pyarrow as pa

ANNOTATION_TYPES = ("BBOX", "SEGMENTATION", "LABEL", "KEYPOINTS", "ATTRIBUTE")

IMAGES_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.int64(), nullable=False),
        pa.field("file_name", pa.string(), nullable=False),  # path relative to the images root
        pa.field("width", pa.int32()),  # as declared by the source file
        pa.field("height", pa.int32()),
        pa.field("uri", pa.string()),  # storage URI of the bytes; null when imported without media
        pa.field("sha256", pa.string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("exif_orientation", pa.int8()),  # 1..8 when the file carries EXIF orientation
        pa.field("license", pa.int64()),
        pa.field("flickr_url", pa.string()),
        pa.field("coco_url", pa.string()),
        pa.field("date_captured", pa.string()),
        pa.field("extra", pa.string()),  # JSON object of keys the schema has no column for
        pa.field("num_annotations", pa.int32(), nullable=False),
    ]
)

ANNOTATIONS_SCHEMA = pa.schema(
    [
        pa.field("annotation_id", pa.int64(), nullable=False),
        pa.field("image_id", pa.int64(), nullable=False),
        pa.field("category_id", pa.int64()),
        pa.field("annotation_type", pa.string(), nullable=False),  # one of ANNOTATION_TYPES
        pa.field("bbox_x", pa.float64()),
        pa.field("bbox_y", pa.float64()),
        pa.field("bbox_w", pa.float64()),
        pa.field("bbox_h", pa.float64()),
        pa.field("area", pa.float64()),
        pa.field("iscrowd", pa.bool_()),
        # COCO polygons: [] when the source said "segmentation": [], null when absent
        pa.field("polygons", pa.list_(pa.list_(pa.float64()))),
        pa.field("rle", pa.string()),  # JSON {"counts": ..., "size": [h, w]} exactly as given
        pa.field("attributes", pa.string()),  # JSON object (CVAT: occluded, rotation, custom)
        pa.field("keypoints", pa.list_(pa.float64())),
        pa.field("num_keypoints", pa.int32()),
        pa.field("score", pa.float64()),
        pa.field("is_machine", pa.bool_(), nullable=False),
        pa.field("source", pa.string()),  # e.g. "coco", "cvat", a model name
        pa.field("extra", pa.string()),  # JSON object of keys the schema has no column for
    ]
)

CATEGORIES_SCHEMA = pa.schema(
    [
        pa.field("category_id", pa.int64(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("supercategory", pa.string()),
        pa.field("keypoints", pa.string()),  # JSON list of keypoint names
        pa.field("skeleton", pa.string()),  # JSON list of pairs
        pa.field("extra", pa.string()),
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "images": IMAGES_SCHEMA,
    "annotations": ANNOTATIONS_SCHEMA,
    "categories": CATEGORIES_SCHEMA,
}

# Primary key per table: the order used for content hashing and stable exports.
TABLE_KEYS: dict[str, str] = {
    "images": "image_id",
    "annotations": "annotation_id",
    "categories": "category_id",
}

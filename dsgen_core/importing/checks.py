"""Cross-record checks on parsed tables (ids, names, references, box and segment geometry), in DuckDB over Arrow."""

from __future__ import annotations

import duckdb

from dsgen_core.importing.polygon_stats import Frame, polygon_stats
from dsgen_core.lake.tables import DatasetTables
from dsgen_core.validation import ValidationReport

EXAMPLES = 5
# A box may overhang the frame by this many pixels before it counts as out of the image (CVAT rounding).
EDGE_TOLERANCE = 0.5
# A polygon point may lie this fraction of the image's width/height (at least 1 px) beyond the frame.
POLYGON_FAR = 0.1
PARAMS = {"tol": EDGE_TOLERANCE, "far": POLYGON_FAR}
MACROS = (
    # The file name as the images folder sees it (the SQL twin of sources.normalize_file_name, plus NFC).
    # Most names need nothing: only those with a backslash, './', '//' or non-ASCII characters are rewritten.
    "CREATE MACRO normalized_name(f) AS CASE WHEN contains(f, '\\') OR contains(f, './') OR contains(f, '//') "
    "OR strlen(f) <> length(f) THEN nfc_normalize(array_to_string(list_filter(string_split(replace(f, '\\', "
    "'/'), '/'), lambda part: part NOT IN ('', '.')), '/')) ELSE f END",
)

# (code, severity, message, SQL giving (example text) rows, one per offending record)
_CHECKS: list[tuple[str, str, str, str]] = [
    (
        "duplicate_image_id",
        "error",
        "image ids must be unique",
        "SELECT 'images: id ' || image_id || ' appears ' || n || ' times' FROM "
        "(SELECT image_id, count(*) n FROM images GROUP BY image_id HAVING n > 1) ORDER BY image_id",
    ),
    (
        "duplicate_annotation_id",
        "error",
        "annotation ids must be unique",
        "SELECT 'annotations: id ' || annotation_id || ' appears ' || n || ' times' FROM "
        "(SELECT annotation_id, count(*) n FROM annotations GROUP BY annotation_id HAVING n > 1) ORDER BY annotation_id",
    ),
    (
        "duplicate_category_id",
        "error",
        "category ids must be unique",
        "SELECT 'categories: id ' || category_id || ' appears ' || n || ' times' FROM "
        "(SELECT category_id, count(*) n FROM categories GROUP BY category_id HAVING n > 1) ORDER BY category_id",
    ),
    (
        "duplicate_file_name",
        "error",
        "two images name the same file (frames are matched by file name, compared as paths: './a.jpg' is 'a.jpg', "
        "'sub\\a.jpg' is 'sub/a.jpg')",
        "WITH named AS (SELECT image_id, file_name, normalized_name(file_name) AS norm FROM images), "
        "twice AS (SELECT norm FROM named GROUP BY norm HAVING count(*) > 1) "
        "SELECT 'images: ' || norm || ' is named by ids ' || ids || CASE WHEN spellings > 1 THEN ' (as ' || names "
        "|| ')' ELSE '' END FROM (SELECT norm, string_agg(image_id::VARCHAR, ', ' ORDER BY image_id) ids, "
        " count(DISTINCT file_name) spellings, "
        " string_agg(DISTINCT to_json(file_name)::VARCHAR, ', ' ORDER BY to_json(file_name)::VARCHAR) names "
        " FROM named SEMI JOIN twice USING (norm) GROUP BY norm) ORDER BY norm",
    ),
    (
        "duplicate_category_name",
        "error",
        "two categories share a name (CVAT labels and the search's category:NAME match by name): rename one",
        "SELECT 'categories: name ' || to_json(name)::VARCHAR || ' used by ids ' || ids FROM "
        "(SELECT name, string_agg(category_id::VARCHAR, ', ' ORDER BY category_id) ids, count(*) n "
        " FROM categories GROUP BY name HAVING n > 1) ORDER BY name",
    ),
    (
        "unknown_image_ref",
        "error",
        "annotations point at an image id that is not in `images`",
        "SELECT 'annotation ' || a.annotation_id || ': image_id ' || a.image_id || ' not found' "
        "FROM annotations a ANTI JOIN images i ON a.image_id = i.image_id ORDER BY a.annotation_id",
    ),
    (
        "unknown_category_ref",
        "error",
        "annotations point at a category id that is not in `categories`",
        "SELECT 'annotation ' || a.annotation_id || ': category_id ' || coalesce(a.category_id::VARCHAR, 'null') "
        "|| ' not found' FROM annotations a ANTI JOIN categories c ON a.category_id = c.category_id "
        "ORDER BY a.annotation_id",
    ),
    (
        "bad_image_size",
        "error",
        "image width/height must be positive",
        "SELECT 'image ' || image_id || ' (' || file_name || '): ' || coalesce(width::VARCHAR, 'null') || 'x' "
        "|| coalesce(height::VARCHAR, 'null') FROM images WHERE coalesce(width, 0) <= 0 OR coalesce(height, 0) <= 0 "
        "ORDER BY image_id",
    ),
    (
        "bbox_nan",
        "warning",
        "boxes with NaN or infinite coordinates",
        "SELECT 'annotation ' || annotation_id || ': bbox [' || bbox_x || ', ' || bbox_y || ', ' || bbox_w || ', ' "
        "|| bbox_h || ']' FROM annotations WHERE isnan(bbox_x) OR isnan(bbox_y) OR isnan(bbox_w) OR isnan(bbox_h) "
        "OR isinf(bbox_x) OR isinf(bbox_y) OR isinf(bbox_w) OR isinf(bbox_h) ORDER BY annotation_id",
    ),
    (
        "bbox_negative",
        "warning",
        "boxes with negative width, height or origin",
        "SELECT 'annotation ' || annotation_id || ': bbox [' || bbox_x || ', ' || bbox_y || ', ' || bbox_w || ', ' "
        "|| bbox_h || ']' FROM annotations WHERE bbox_w < 0 OR bbox_h < 0 OR bbox_x < 0 OR bbox_y < 0 "
        "ORDER BY annotation_id",
    ),
    (
        "bbox_out_of_image",
        "warning",
        "boxes reaching outside their image",
        "SELECT 'annotation ' || a.annotation_id || ' on image ' || a.image_id || ' (' || i.width || 'x' || i.height "
        "|| '): bbox [' || a.bbox_x || ', ' || a.bbox_y || ', ' || a.bbox_w || ', ' || a.bbox_h || ']' "
        "FROM annotations a JOIN images i USING (image_id) "
        "WHERE a.bbox_x + a.bbox_w > i.width + $tol OR a.bbox_y + a.bbox_h > i.height + $tol "
        "OR a.bbox_x < -$tol OR a.bbox_y < -$tol ORDER BY a.annotation_id",
    ),
    (
        "rle_size_mismatch",
        "error",
        "RLE masks whose size [height, width] is not their image's (the mask cannot be laid on the image)",
        "SELECT 'annotation ' || a.annotation_id || ' on image ' || a.image_id || ' (' || i.width || 'x' || i.height "
        "|| '): RLE size ' || coalesce(json_extract(a.rle, '$.size')::VARCHAR, 'missing') "
        "FROM annotations a JOIN images i USING (image_id) WHERE a.rle IS NOT NULL AND "
        "TRY_CAST(json_extract(a.rle, '$.size') AS DOUBLE[]) IS DISTINCT FROM [i.height::DOUBLE, i.width::DOUBLE] "
        "ORDER BY a.annotation_id",
    ),
    (
        "polygon_odd_coordinates",
        "error",
        "polygons with an odd number of coordinates (a polygon is x1, y1, x2, y2, …)",
        "SELECT 'annotation ' || annotation_id || ': ' || n_odd || ' polygon(s) of an odd number of coordinates "
        "(the first has ' || first_odd || ')' FROM polygon_stats WHERE n_odd > 0 ORDER BY annotation_id",
    ),
    (
        "polygon_too_few_points",
        "warning",
        "polygons with fewer than 3 points (no area; CVAT needs 3)",
        "SELECT 'annotation ' || annotation_id || ': ' || n_short || ' polygon(s) of fewer than 3 points (the "
        "first has ' || first_short || ')' FROM polygon_stats WHERE n_short > 0 ORDER BY annotation_id",
    ),
    (
        "polygon_out_of_image",
        "warning",
        "polygons reaching far outside their image (a point beyond the frame by more than a tenth of its size)",
        "SELECT 'annotation ' || e.annotation_id || ' on image ' || e.image_id || ' (' || i.width || 'x' || i.height "
        "|| '): points span x ' || e.x0 || '…' || e.x1 || ', y ' || e.y0 || '…' || e.y1 "
        "FROM polygon_stats e JOIN images i USING (image_id) "
        "WHERE e.x0 < -greatest(1, $far * i.width) OR e.x1 > i.width + greatest(1, $far * i.width) "
        "OR e.y0 < -greatest(1, $far * i.height) OR e.y1 > i.height + greatest(1, $far * i.height) "
        "ORDER BY e.annotation_id",
    ),
    (
        "zero_area",
        "warning",
        "annotations with zero area (empty box or segment)",
        "SELECT 'annotation ' || annotation_id || ': area ' || coalesce(area::VARCHAR, 'null') || ', bbox ' "
        "|| coalesce(bbox_w::VARCHAR, '?') || 'x' || coalesce(bbox_h::VARCHAR, '?') FROM annotations "
        "WHERE (bbox_w IS NOT NULL AND (bbox_w = 0 OR bbox_h = 0)) OR area = 0 ORDER BY annotation_id",
    ),
]


def _margin(size: float) -> float:
    """How far a polygon point may lie beyond an edge of this length (the SQL's greatest(1, $far * size))."""
    return max(1.0, POLYGON_FAR * size)


def _frame_of_every_image(con: duckdb.DuckDBPyConnection) -> Frame | None:
    """Where a point is fine on every image (the smallest frame with its margins): polygons inside it need no
    extent for polygon_out_of_image."""
    [(w, h)] = con.execute("SELECT min(width), min(height) FROM images WHERE width > 0 AND height > 0").fetchall()
    if w is None or h is None:
        return None
    return (-_margin(w), w + _margin(w), -_margin(h), h + _margin(h))


def check_tables(tables: DatasetTables, report: ValidationReport) -> None:
    """Add one finding per failed rule, with its count and first examples."""
    con = duckdb.connect()
    try:
        con.register("images", tables.images)
        con.register("annotations", tables.annotations)
        con.register("categories", tables.categories)
        con.register("polygon_stats", polygon_stats(tables.annotations, _frame_of_every_image(con)))
        for macro in MACROS:
            con.execute(macro)
        for code, severity, message, sql in _CHECKS:
            params = {k: v for k, v in PARAMS.items() if f"${k}" in sql} or None
            count = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]  # noqa: S608 - fixed SQL
            if count:
                rows = con.execute(f"{sql} LIMIT {EXAMPLES}", params).fetchall()
                report.add(code, severity, message, count, [r[0] for r in rows])
        unused = con.execute(
            "SELECT count(*) FROM categories c ANTI JOIN annotations a ON a.category_id = c.category_id"
        ).fetchone()[0]
        report.stats["unused_categories"] = int(unused)
    finally:
        con.close()

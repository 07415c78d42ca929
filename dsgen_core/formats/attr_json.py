"""ATTR_JSON: per-image attribute classification, `{file_name: {attribute: value}}` with a schema of allowed values.

The file (documented in docs/formats.md)::

    {"format": "dsgen-attr-json", "version": 1,
     "schema": {"weather": {"type": "enum", "values": ["sunny", "rain"]},
                "blurred": {"type": "bool"}, "people": {"type": "int", "min": 0},
                "brightness": {"type": "number", "min": 0, "max": 1}, "note": {"type": "text"}},
     "images": {"cam1/0001.jpg": {"weather": "sunny", "blurred": false}}}

The bare mapping `{file_name: {attribute: value}}` is read too (its schema is inferred). Each
image gets one ATTRIBUTE annotation whose `attributes` hold its values; the schema goes to the
tables' meta as `attr_schema`. File names are relative to `images/` beside the file, else its folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.headers import header_sizes
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.tree import SourceTree, is_image_name
from dsgen_core.validation import MAX_EXAMPLES, ValidationReport

__all__ = ["FORMAT", "MARKER", "AttrJson", "check_value", "infer_schema"]

MARKER = "dsgen-attr-json"
FILE_NAME = "attributes.json"
TYPES = ("enum", "bool", "int", "number", "text")
_MAX_ENUM = 64


def infer_schema(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The narrowest schema that allows every value present."""
    values: dict[str, list[Any]] = {}
    for attrs in rows.values():
        for k, v in attrs.items():
            if v is not None:
                values.setdefault(k, []).append(v)
    out: dict[str, dict[str, Any]] = {}
    for k, vs in sorted(values.items()):
        if all(isinstance(v, bool) for v in vs):
            out[k] = {"type": "bool"}
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vs):
            out[k] = {"type": "int"}
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in vs):
            out[k] = {"type": "number"}
        elif all(isinstance(v, str) for v in vs) and len(set(vs)) <= _MAX_ENUM:
            out[k] = {"type": "enum", "values": sorted(set(vs))}
        else:
            out[k] = {"type": "text"}
    return out


def check_value(spec: dict[str, Any], value: Any) -> str | None:
    """Why `value` is not allowed by `spec`, or None."""
    if value is None:
        return None
    t = spec.get("type")
    if t == "enum":
        return None if value in spec.get("values", []) else f"{value!r} is not one of {spec.get('values')}"
    if t == "bool":
        return None if isinstance(value, bool) else f"{value!r} is not true/false"
    if t in ("int", "number"):
        ok = isinstance(value, int) and not isinstance(value, bool) if t == "int" else \
            isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            return f"{value!r} is not {'an integer' if t == 'int' else 'a number'}"
        if "min" in spec and value < spec["min"]:
            return f"{value} < min {spec['min']}"
        if "max" in spec and value > spec["max"]:
            return f"{value} > max {spec['max']}"
        return None
    if t == "text":
        return None if isinstance(value, str) else f"{value!r} is not text"
    return f"schema type {t!r} is not one of {', '.join(TYPES)}"


def _parse(doc: Any) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]] | None]:
    """(schema or None, rows) of a document, rows None when it is not ATTR_JSON."""
    if isinstance(doc, dict) and isinstance(doc.get("images"), dict) and (doc.get("format") == MARKER or
                                                                          "schema" in doc):
        rows = doc["images"]
        schema = doc.get("schema")
    elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()) and all(
            is_image_name(k) for k in list(doc)[:50]):
        rows, schema = doc, None
    else:
        return None, None
    if not all(isinstance(v, dict) for v in rows.values()):
        return None, None
    return schema, rows


def _json_files(tree: SourceTree) -> list[str]:
    if tree.file is not None:
        return [tree.file.name] if tree.file.suffix.lower() == ".json" else []
    return [f for f in tree.listdir()[1] if f.lower().endswith(".json")]


class AttrJson(ExportBase):
    name = "attr_json"
    title = "ATTR_JSON (per-image attributes with a schema)"

    def detect(self, tree: SourceTree) -> Detection | None:
        for rel in _json_files(tree):
            size = (tree.root / rel).stat().st_size
            head = tree.head(rel, 1 << 16)
            if size > 64 << 20:
                if MARKER.encode() in head:
                    return Detection(self.name, 0.95, f"{rel} marked {MARKER}", tree.root)
                continue
            try:
                schema, rows = _parse(orjson.loads((tree.root / rel).read_bytes()))
            except orjson.JSONDecodeError:
                continue
            if rows is None:
                continue
            marked = MARKER.encode() in head
            return Detection(self.name, 0.95 if marked else 0.75, f"{rel}: per-image attribute mapping", tree.root,
                             classes=tuple(sorted(schema or infer_schema(rows))), images=len(rows),
                             annotations=len(rows))
        return None

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        tree = SourceTree(Path(source))
        rel, doc = None, None
        for r in _json_files(tree):
            try:
                doc = orjson.loads((tree.root / r).read_bytes())
            except orjson.JSONDecodeError as exc:
                report.error("json_unreadable", f"{r}: {exc}")
                return None
            if _parse(doc)[1] is not None:
                rel = r
                break
        schema, rows = _parse(doc) if doc is not None else (None, None)
        if rows is None or rel is None:
            report.error("bad_source", f"{source}: no ATTR_JSON file")
            return None
        if schema is None:
            schema = infer_schema(rows)
        elif not isinstance(schema, dict) or not all(isinstance(v, dict) for v in schema.values()):
            report.error("bad_type", f"{rel}: `schema` must map attribute names to {{\"type\": …}} objects")
            return None
        images_root = tree.root / "images" if (tree.root / "images").is_dir() else tree.root
        b = TableBuilder(self.name)
        names = list(rows)
        sizes = header_sizes([images_root / n for n in names])
        unknown, bad, missing = [], [], []
        n_unknown = n_bad = 0
        for name, size in zip(names, sizes, strict=True):
            if size.error:
                missing.append(f"{name}: {size.error}")
                continue
            attrs = rows[name]
            for k, v in attrs.items():
                if k not in schema:
                    n_unknown += 1
                    if len(unknown) < MAX_EXAMPLES:
                        unknown.append(f"{name}: {k}")
                    continue
                why = check_value(schema[k], v)
                if why:
                    n_bad += 1
                    if len(bad) < MAX_EXAMPLES:
                        bad.append(f"{name}: {k}: {why}")
            image_id = b.image(name, size.width, size.height, exif_orientation=size.orientation)
            b.annotation(image_id, None, "ATTRIBUTE", attributes=attrs or None)
        report.error("image_missing", f"images named in {rel} but not readable in {images_root}", len(missing),
                     missing)
        report.error("attr_unknown", "attributes the schema does not declare", n_unknown, unknown)
        report.error("attr_value_not_allowed", "values the schema does not allow", n_bad, bad)
        tables = b.tables({"format": self.name, "attr_schema": schema})
        return ReadResult(self.name, Path(source), [Split("default", tables, images_root)])

    numbers_classes = False
    carries = frozenset({"image_attributes"})

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        if len(splits) > 1:
            report.notes.append("one attributes.json per split folder")

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: None,
                   report: ConversionReport) -> dict[str, int]:
        n = n_images = 0
        for s in splits:
            root = out if len(splits) == 1 else out / s.name
            rows = _rows(s)
            schema = s.tables.meta.get("attr_schema") or infer_schema(rows)
            doc = {"format": MARKER, "version": 1, "schema": schema, "images": rows}
            root.mkdir(parents=True, exist_ok=True)
            (root / FILE_NAME).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            n += len(rows)
            pairs = [(src, root / "images" / name) for name, src in
                     zip(s.tables.images.column("file_name").to_pylist(), image_sources(s), strict=True)
                     if src is not None]
            n_images += place_images(pairs, options.images, report)
        return {"images": n_images, "entries": n}


def _rows(s: Split) -> dict[str, dict[str, Any]]:
    names = dict(zip(s.tables.images.column("image_id").to_pylist(), s.tables.images.column("file_name").to_pylist(),
                     strict=True))
    rows: dict[str, dict[str, Any]] = {n: {} for n in names.values()}
    a = s.tables.annotations
    for image_id, kind, attrs in zip(a.column("image_id").to_pylist(), a.column("annotation_type").to_pylist(),
                                     a.column("attributes").to_pylist(), strict=True):
        if kind == "ATTRIBUTE" and attrs and image_id in names:
            rows[names[image_id]].update(orjson.loads(attrs))
    return rows


FORMAT = AttrJson()

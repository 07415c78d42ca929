"""COCO 1.0 as CVAT writes it, as a `Format`: the existing reader and writer, wrapped.

`annotations/instances_<split>.json` (one per split) beside `images/` (or `images/<split>/`).
The JSON round-trips everything the lake holds, the keys without a column included, so the only
loss is what COCO cannot express at all: image-level attribute records without a category.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pyarrow.compute as pc

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.coco_reader import read_coco
from dsgen_core.formats.coco_writer import write_coco
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.tree import SourceTree
from dsgen_core.lake.tables import DatasetTables
from dsgen_core.validation import ValidationReport

__all__ = ["FORMAT", "Coco"]

_SUMMARY_LIMIT = 32 << 20  # parse files up to this size for the detection summary
_PREFIX = "instances_"


def _json_files(tree: SourceTree) -> list[str]:
    if tree.file is not None:
        return [tree.file.name] if tree.file.suffix.lower() == ".json" else []
    found = [f"annotations/{f}" for f in tree.listdir("annotations")[1] if f.endswith(".json")]
    return found or [f for f in tree.listdir()[1] if f.endswith(".json")]


def _looks_like_coco(head: bytes) -> bool:
    text = head.lstrip()
    return text.startswith(b"{") and b'"images"' in head and (b'"annotations"' in head or b'"categories"' in head)


def _split_name(json_name: str) -> str:
    stem = Path(json_name).stem
    return stem[len(_PREFIX):] if stem.startswith(_PREFIX) else "default"


# Everything but category-less records: unknown keys travel as JSON members, as the COCO reader keeps them.
_CARRIED = ("boxes", "polygons", "multipart", "rle", "iscrowd", "rotation", "occluded", "attributes", "polylines",
            "points", "ellipses", "cuboids", "keypoints", "tags", "scores", "extra", "metadata")


class Coco(ExportBase):
    name = "coco"
    title = "COCO 1.0 (annotations/instances_<split>.json + images/)"
    carries = frozenset(_CARRIED)

    def detect(self, tree: SourceTree) -> Detection | None:
        files = [f for f in _json_files(tree) if _looks_like_coco(tree.head(f, 1 << 16))]
        if not files:
            return None
        classes: set[str] = set()
        images = annotations = 0
        counted = True
        for f in files:
            path = tree.root / f
            if path.stat().st_size > _SUMMARY_LIMIT:
                counted = False
                continue
            try:
                doc = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                continue
            classes |= {str(c.get("name")) for c in doc.get("categories", []) if isinstance(c, dict)}
            images += len(doc.get("images", []))
            annotations += len(doc.get("annotations", []))
        cvat = all(f.startswith(f"annotations/{_PREFIX}") for f in files)
        return Detection(self.name, 0.9 if cvat else 0.8, f"COCO JSON: {', '.join(files)}", tree.root,
                         classes=tuple(sorted(classes)), images=images if counted else None,
                         annotations=annotations if counted else None,
                         splits=tuple(_split_name(f) for f in files))

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        tree = SourceTree(Path(source))
        files = [f for f in _json_files(tree) if _looks_like_coco(tree.head(f, 1 << 16))]
        if not files:
            report.error("bad_source", f"{source}: no COCO annotation file")
            return None
        splits = []
        for f in files:
            tables = read_coco(tree.root / f, report)
            if tables is None:
                return None
            name = _split_name(f)
            images = tree.root / "images"
            root = images / name if (images / name).is_dir() and len(files) > 1 else images
            splits.append(Split(name, tables, root if root.is_dir() else None))
        return ReadResult(self.name, Path(source), splits)

    numbers_classes = False  # COCO keeps the category ids themselves

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        cats = splits[0].tables.categories if splits else None
        if cats is not None:
            report.class_map = [(c, c, n) for c, n in zip(cats.column("category_id").to_pylist(),
                                                          cats.column("name").to_pylist(), strict=True)]

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: None,
                   report: ConversionReport) -> dict[str, int]:
        n_images = n_ann = 0
        (out / "annotations").mkdir()
        for s in splits:
            split = s.name or "default"
            tables = _without_categoryless(s.tables)
            write_coco(tables, out / "annotations" / f"{_PREFIX}{split}.json")
            n_ann += tables.annotations.num_rows
            images = out / "images" / (split if len(splits) > 1 else "")
            pairs = [(src, images / name) for name, src in
                     zip(s.tables.images.column("file_name").to_pylist(), image_sources(s), strict=True)
                     if src is not None]
            n_images += place_images(pairs, options.images, report)
        return {"images": n_images, "annotations": n_ann, "json_files": len(splits)}


def _without_categoryless(t: DatasetTables) -> DatasetTables:
    keep = pc.is_valid(t.annotations.column("category_id"))
    return DatasetTables(t.images, t.annotations.filter(keep), t.categories, dict(t.meta))


FORMAT = Coco()

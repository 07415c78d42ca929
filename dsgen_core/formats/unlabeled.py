"""Unlabeled images: a folder of image files (searched recursively) or a single image file, no annotations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.images import add_images
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.tree import SourceTree, is_image_name
from dsgen_core.validation import ValidationReport

__all__ = ["FORMAT", "Unlabeled"]


class Unlabeled(ExportBase):
    name = "unlabeled"
    title = "Images only (no annotations)"

    def detect(self, tree: SourceTree) -> Detection | None:
        if tree.file is not None:
            if not is_image_name(tree.file.name):
                return None
            return Detection(self.name, 0.9, "a single image file", tree.root, images=1, annotations=0)
        n = tree.count_images()
        if not n:
            return None
        # Every image dataset is also a folder of images: the lowest score, so any real format wins.
        return Detection(self.name, 0.05, f"{n} image files", tree.root, images=n, annotations=0)

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        source = Path(source)
        tree = SourceTree(source)
        paths = [tree.file] if tree.file is not None else [tree.root / r for r in tree.images()]
        if not paths:
            report.error("bad_source", f"{source}: no image files")
            return None
        b = TableBuilder(self.name)
        add_images(b, paths, tree.root, report)
        return ReadResult(self.name, source, [Split("default", b.tables({"format": self.name}), tree.root)])

    numbers_classes = False
    needs_images = True

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: None,
                   report: ConversionReport) -> dict[str, int]:
        n = 0
        for s in splits:
            root = out if len(splits) == 1 else out / s.name
            pairs = [(src, root / name) for name, src in
                     zip(s.tables.images.column("file_name").to_pylist(), image_sources(s), strict=True)
                     if src is not None]
            n += place_images(pairs, options.images, report)
        return {"images": n}


FORMAT = Unlabeled()

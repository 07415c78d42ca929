"""The format registry: built-in formats listed once, by module, and a ranked detection over all of them.

Nothing registers itself on import: `FormatRegistry.builtin()` imports the modules named in
`BUILTIN_FORMATS` and takes each one's `FORMAT`. `rank` lets every format score one shared
listing of the source; when the two best are within `AMBIGUITY_MARGIN` the answer is
"ambiguous" and the caller asks the user instead of guessing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsgen_core.formats.base import Detection, Format
from dsgen_core.formats.tree import SourceTree

__all__ = ["AMBIGUITY_MARGIN", "BUILTIN_FORMATS", "FormatRegistry", "Ranking", "UnknownFormat"]

BUILTIN_FORMATS: tuple[str, ...] = (
    "dsgen_core.formats.coco",
    "dsgen_core.formats.yolo",
    "dsgen_core.formats.yolo_darknet",
    "dsgen_core.formats.voc",
    "dsgen_core.formats.cvat_xml",
    "dsgen_core.formats.visdrone",
    "dsgen_core.formats.imagefolder",
    "dsgen_core.formats.attr_json",
    "dsgen_core.formats.unlabeled",
)
AMBIGUITY_MARGIN = 0.1
_DESCEND = 3  # a folder holding one sub-folder only (a zip's top folder) is looked into, this deep


class UnknownFormat(KeyError):
    """No registered format has this name."""


@dataclass
class Ranking:
    """Every format's view of one source, best first."""

    path: Path
    root: Path  # where detection looked (after descending through single sub-folders)
    candidates: list[Detection] = field(default_factory=list)

    @property
    def best(self) -> Detection | None:
        return self.candidates[0] if self.candidates else None

    @property
    def ambiguous(self) -> bool:
        """Two formats scored within the margin: ask instead of guessing."""
        c = self.candidates
        return len(c) > 1 and c[0].score - c[1].score < AMBIGUITY_MARGIN

    def message(self) -> str:
        if not self.candidates:
            return f"{self.path}: no known dataset format found"
        if self.ambiguous:
            tied = [d for d in self.candidates if self.candidates[0].score - d.score < AMBIGUITY_MARGIN]
            names = ", ".join(f"{d.format} ({d.score:.2f}: {d.reason})" for d in tied)
            return f"{self.path}: could be {names}; choose the format"
        b = self.candidates[0]
        return f"{self.path}: {b.format} ({b.score:.2f}: {b.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "root": str(self.root), "ambiguous": self.ambiguous,
                "candidates": [d.to_dict() for d in self.candidates]}


class FormatRegistry:
    """Formats by name, in registration order."""

    def __init__(self, formats: Iterable[Format] = ()):
        self._formats: dict[str, Format] = {}
        for f in formats:
            self.register(f)

    @classmethod
    def builtin(cls) -> FormatRegistry:
        return cls(importlib.import_module(m).FORMAT for m in BUILTIN_FORMATS)

    def register(self, fmt: Format) -> None:
        if fmt.name in self._formats:
            raise ValueError(f"format {fmt.name!r} is registered twice")
        self._formats[fmt.name] = fmt

    def names(self) -> list[str]:
        return list(self._formats)

    def get(self, name: str) -> Format:
        try:
            return self._formats[name]
        except KeyError:
            raise UnknownFormat(f"unknown format {name!r} (known: {', '.join(self._formats)})") from None

    def rank(self, path: Path) -> Ranking:
        """Every format scores the source; candidates with a positive score, best first."""
        path = Path(path)
        root = path
        for _ in range(_DESCEND):
            if not root.is_dir():
                break
            tree = SourceTree(root)
            dirs, files = tree.listdir()
            if files or len(dirs) != 1:
                break
            root = root / dirs[0]
        tree = SourceTree(root)
        found = []
        for fmt in self._formats.values():
            d = fmt.detect(tree)
            if d is not None and d.score > 0:
                found.append(d)
        found.sort(key=lambda d: -d.score)
        return Ranking(path, root, found)

"""The format wing's one contract: a `Format` detects, reads and writes lake tables, and says what it loses.

A source may hold several splits (YOLO's train/val/test, VOC's image sets, ImageFolder's train/val
folders): `read` returns one `Split` per split found, each with the folder its `file_name`s are
relative to. `write` takes the same splits and refuses a lossy conversion unless it was allowed;
its `ConversionReport` says exactly what the target cannot carry, with counts and examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dsgen_core.lake.tables import DatasetTables
from dsgen_core.validation import MAX_EXAMPLES, ValidationReport

if TYPE_CHECKING:
    from dsgen_core.formats.tree import SourceTree

__all__ = [
    "ClassOrder",
    "ConversionRefused",
    "ConversionReport",
    "Detection",
    "Format",
    "ImageMode",
    "Loss",
    "ReadResult",
    "Split",
    "WriteOptions",
]


@dataclass(frozen=True)
class Detection:
    """How sure one format is that it can read a source, plus what a quick look found there.

    Counts come from file listings and a few sampled files, never from reading everything;
    `annotations_estimated` says when the annotation count was extrapolated from a sample.
    """

    format: str
    score: float  # 0 (not this format) … 1 (certain)
    reason: str
    root: Path
    classes: tuple[str, ...] = ()
    images: int | None = None
    annotations: int | None = None
    annotations_estimated: bool = False
    splits: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"] = str(self.root)
        d["classes"], d["splits"] = list(self.classes), list(self.splits)
        return d


@dataclass
class Split:
    """One split of a dataset: lake tables whose `file_name`s are relative to `images_root`."""

    name: str
    tables: DatasetTables
    images_root: Path | None = None  # None: no image bytes (annotations only)


@dataclass
class ReadResult:
    """What `Format.read` found: one split per split of the source (a single "default" if none)."""

    format: str
    source: Path
    splits: list[Split]

    def split(self, name: str) -> Split:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(f"no split {name!r} (found: {', '.join(s.name for s in self.splits)})")


class ImageMode(StrEnum):
    """How a writer puts image files next to the labels: never re-encoded."""

    HARDLINK = "hardlink"  # same bytes, no space; falls back to a copy across file systems
    SYMLINK = "symlink"
    COPY = "copy"
    NONE = "none"  # labels only


class ClassOrder(StrEnum):
    """How a writer numbers classes for index-based formats (YOLO, ImageFolder)."""

    CATEGORY_ID = "category_id"  # ascending category id → 0, 1, 2, …
    NAME = "name"  # names sorted by code point (torchvision's order)
    GIVEN = "given"  # `WriteOptions.class_names`, in that order


@dataclass(frozen=True)
class WriteOptions:
    images: ImageMode = ImageMode.HARDLINK
    class_order: ClassOrder = ClassOrder.CATEGORY_ID
    class_names: tuple[str, ...] = ()  # with ClassOrder.GIVEN: the target's class list
    allow_lossy: bool = False  # write even when the target cannot carry everything
    task: str = "auto"  # YOLO: "detect", "segment" or "auto" (segment when every object has a polygon)
    decimals: int = 6  # YOLO: digits after the point of normalised coordinates (CVAT and Ultralytics: 6)


@dataclass
class Loss:
    """One kind of data the target cannot carry."""

    what: str  # e.g. "attributes", "rotation", "polygons", "rle", "iscrowd", "polylines", "tags"
    message: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class ConversionReport:
    """Before writing: what will be lost (and what blocks the write); after: what was written."""

    target: str
    losses: list[Loss] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # block the write even when lossy is allowed
    notes: list[str] = field(default_factory=list)
    class_map: list[tuple[int, int, str]] = field(default_factory=list)  # (category_id, target id, name)
    written: dict[str, int] = field(default_factory=dict)

    @property
    def lossy(self) -> bool:
        return bool(self.losses)

    def lose(self, what: str, message: str, count: int, examples: Sequence[Any] = ()) -> None:
        """Record a loss; zero counts are ignored so callers can add unconditionally."""
        if count > 0:
            self.losses.append(Loss(what, message, int(count), [str(e) for e in list(examples)[:MAX_EXAMPLES]]))

    def loss(self, what: str) -> Loss | None:
        return next((x for x in self.losses if x.what == what), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render_text(self) -> str:
        lines = [f"Conversion to {self.target}: " + ("lossy" if self.lossy else "lossless")]
        lines += [f"  [BLOCKED] {p}" for p in self.problems]
        for x in self.losses:
            lines.append(f"  [LOST] {x.what}: {x.message} ({x.count})")
            lines += [f"      e.g. {e}" for e in x.examples]
        lines += [f"  [NOTE] {n}" for n in self.notes]
        if self.written:
            lines.append("  written: " + ", ".join(f"{k} {v}" for k, v in self.written.items()))
        return "\n".join(lines)


class ConversionRefused(Exception):
    """A write that would lose data without permission, or that cannot be done; carries the report."""

    def __init__(self, report: ConversionReport):
        self.report = report
        what = report.problems[0] if report.problems else ", ".join(x.what for x in report.losses)
        super().__init__(f"{report.target}: {what}" + ("" if report.problems else " (allow a lossy export)"))


@runtime_checkable
class Format(Protocol):
    """One dataset format. Implementations are module-level singletons named `FORMAT`."""

    name: str  # registry key, e.g. "yolo"
    title: str  # for people, e.g. "YOLO (Ultralytics)"

    def detect(self, tree: SourceTree) -> Detection | None:
        """Score the source from a listing and a few small files; None when it is clearly not this format."""
        ...

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        """Lake tables per split; faults go to `report`; None when nothing could be read."""
        ...

    def plan(self, splits: Sequence[Split], options: WriteOptions) -> ConversionReport:
        """What writing `splits` would lose or cannot do, without writing anything."""
        ...

    def write(self, splits: Sequence[Split], dest: Path, options: WriteOptions) -> ConversionReport:
        """Write `splits` into the new folder `dest`; raises ConversionRefused for a refused plan."""
        ...

"""A cheap, shared view of a source for detection: folder listings and the first bytes of a few files.

Every format's detector looks at the same `SourceTree`, so a 118k-image folder is listed once
(`os.scandir`, no `stat` per file) and no detector reads more than a handful of small files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "SourceTree", "is_image_name"]

# Ultralytics' IMG_FORMATS ∪ torchvision's IMG_EXTENSIONS ∪ what the COCO import accepts.
IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic", ".ppm",
     ".pgm", ".gif"}
)
_SKIP_DIRS = ("__MACOSX",)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not name.startswith(".")


class SourceTree:
    """Listings of a folder (or the folder of a single file), made on demand and kept."""

    def __init__(self, path: Path):
        path = Path(path)
        self.file: Path | None = path if path.is_file() else None
        self.root: Path = path.parent if self.file is not None else path
        self._dirs: dict[str, tuple[list[str], list[str]]] = {}
        self._name_sets: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._heads: dict[str, bytes] = {}
        self._files: dict[tuple[str, frozenset[str] | None], list[str]] = {}

    def listdir(self, rel: str = "") -> tuple[list[str], list[str]]:
        """(sub-folder names, file names) of one folder, sorted; empty when it does not exist."""
        got = self._dirs.get(rel)
        if got is None:
            try:
                with os.scandir(self.root / rel if rel else self.root) as it:
                    entries = [(e.name, e.is_dir()) for e in it]
            except OSError:
                entries = []
            dirs = [n for n, d in entries if d and not n.startswith(".") and n not in _SKIP_DIRS]
            files = [n for n, d in entries if not d and not n.startswith(".")]
            dirs.sort()
            files.sort()
            got = (dirs, files)
            self._dirs[rel] = got
        return got

    def is_dir(self, rel: str) -> bool:
        parent, _, name = rel.rstrip("/").rpartition("/")
        return name in self._sets(parent)[0]

    def is_file(self, rel: str) -> bool:
        parent, _, name = rel.rpartition("/")
        return name in self._sets(parent)[1]

    def _sets(self, rel: str) -> tuple[frozenset[str], frozenset[str]]:
        got = self._name_sets.get(rel)
        if got is None:
            dirs, files = self.listdir(rel)
            got = self._name_sets[rel] = (frozenset(dirs), frozenset(files))
        return got

    def walk(self, rel: str = "", max_depth: int = 8) -> Iterator[tuple[str, list[str], list[str]]]:
        """(folder, sub-folders, files) under `rel`, top-down, folders relative to the root."""
        stack = [(rel, 0)]
        while stack:
            folder, depth = stack.pop()
            dirs, files = self.listdir(folder)
            yield folder, dirs, files
            if depth < max_depth:
                stack.extend((f"{folder}/{d}" if folder else d, depth + 1) for d in reversed(dirs))

    def _matching(self, folder: str, suffixes: frozenset[str] | None) -> list[str]:
        names = self.listdir(folder)[1]
        if suffixes is None:
            return names
        key = (f"\0{folder}", suffixes)  # per-folder results share the cache of `files`
        got = self._files.get(key)
        if got is None:
            ends = tuple(suffixes)
            got = self._files[key] = [n for n in names if n.lower().endswith(ends)]
        return got

    def files(self, rel: str = "", suffixes: frozenset[str] | None = None) -> list[str]:
        """Every file under `rel` (relative to the root), optionally only those with these suffixes."""
        key = (rel, suffixes)
        got = self._files.get(key)
        if got is None:
            got = []
            for folder, _dirs, _names in self.walk(rel):
                names = self._matching(folder, suffixes)
                got.extend([f"{folder}/{n}" for n in names] if folder else names)
            self._files[key] = got
        return got

    def count(self, rel: str = "", suffixes: frozenset[str] | None = None) -> int:
        """How many files `files` would list, without building their paths."""
        if (rel, suffixes) in self._files:
            return len(self._files[(rel, suffixes)])
        return sum(len(self._matching(folder, suffixes)) for folder, _d, _n in self.walk(rel))

    def images(self, rel: str = "") -> list[str]:
        return self.files(rel, IMAGE_EXTENSIONS)

    def count_images(self, rel: str = "") -> int:
        return self.count(rel, IMAGE_EXTENSIONS)

    def head(self, rel: str, size: int = 65536) -> bytes:
        """The first `size` bytes of a file (b"" when unreadable)."""
        key = f"{rel}\0{size}"
        if key not in self._heads:
            try:
                with open(self.root / rel, "rb") as f:
                    self._heads[key] = f.read(size)
            except OSError:
                self._heads[key] = b""
        return self._heads[key]

    def text(self, rel: str, size: int = 65536) -> str:
        return self.head(rel, size).decode("utf-8", errors="replace")

    def sample(self, items: list[str], n: int = 64) -> list[str]:
        """Up to n items spread evenly over the list (deterministic)."""
        if len(items) <= n:
            return list(items)
        step = len(items) / n
        return [items[int(i * step)] for i in range(n)]

"""The image files an import can see, in a server folder or inside an archive, keyed by normalized name.

Keys are relative POSIX paths in Unicode NFC, so a JSON written on Linux finds files a Mac named in
NFD. `images()` holds what counts as an image of the folder (known extension, not hidden), for the
"unlisted" report; `find()` also finds what the annotations name explicitly (hidden files, other
extensions), so a listed file is reported as what it is rather than as missing.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dsgen_core.importing.archive_limits import Budget
from dsgen_core.importing.archive_names import nfc
from dsgen_core.importing.archives import Archive, Member, safe_key
from dsgen_core.importing.server_paths import PathPolicy, resolved
from dsgen_core.media import ImageProbe, probe_bytes, probe_images

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
Progress = Callable[[int, int], None]
IN_MEMORY = 512 << 20  # bytes of archive members a check holds at once while probing them

AMBIGUOUS, SPECIAL, OUTSIDE = "ambiguous", "special", "outside"


@dataclass
class Found:
    key: str
    path: Path | None = None  # a file of a server folder (as found under the root, links unresolved)
    member: Member | None = None  # a member of an archive
    problem: str | None = None  # AMBIGUOUS | SPECIAL (FIFO, folder, device) | OUTSIDE (a link leaving the roots)

    @property
    def hidden(self) -> bool:
        return any(part.startswith(".") for part in self.key.split("/"))

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.key)[1].lower()


def is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


class FolderImages:
    """Image files under a server folder; links are followed only to where the user's policy permits."""

    def __init__(self, root: Path, label: str, policy: PathPolicy | None = None):
        self.root, self.label, self.policy = Path(root), label, policy
        self._index: dict[str, Found] | None = None

    def prepare(self, listed: set[str]) -> None:
        """Nothing to decide for a folder: its names are what the file system says."""

    def images(self) -> dict[str, Found]:
        if self._index is None:
            self._index = {}
            for rel, path, is_link in _walk(self.root):
                key = nfc(rel)
                if key in self._index:  # two names that differ only in Unicode normalization
                    self._index[key] = Found(key, path, problem=AMBIGUOUS)
                    continue
                found = Found(key, path)
                if is_link:
                    self._police(found)
                self._index[key] = found
        return self._index

    def find(self, key: str) -> Found | None:
        """A listed name the walk did not index: a hidden file, another extension, a FIFO, a linked folder."""
        for rel in dict.fromkeys((key, unicodedata.normalize("NFD", key))):
            path = self.root.joinpath(*rel.split("/"))
            try:
                mode = os.stat(path).st_mode  # follows links; refused below if they lead outside
            except (OSError, ValueError):
                continue
            found = Found(key, path, problem=None if stat.S_ISREG(mode) else SPECIAL)
            return self._police(found)
        return None

    def _police(self, found: Found) -> Found:
        real = resolved(found.path)
        if self.policy is not None and (real is None or not self.policy.permits(real)):
            found.problem = OUTSIDE
        return found

    def probe(self, found: list[Found], progress: Progress | None, workers: int,
              extract_to: Path | None) -> tuple[list[Path | None], list[ImageProbe]]:
        paths = [f.path for f in found]
        return paths, probe_images(paths, workers=workers, verify=True, progress=progress)


class ArchiveImages:
    """Image members of an archive under its images folder, whose prefix (e.g. "task_1/images/") `locate`
    finds again after the legacy code page was chosen (a folder name may be legacy-encoded too)."""

    def __init__(self, archive: Archive, locate: Callable[[Archive], str | None], budget: Budget):
        self.archive, self.locate, self.budget = archive, locate, budget
        self.prefix = locate(archive) or ""

    @property
    def label(self) -> str:
        return f"{self.archive.display}:{self.prefix or '/'}"

    def prepare(self, listed: set[str]) -> None:
        """Legacy-encoded names: take the code page under which most of the annotations' names are found."""

        def score(decoded: list[str]) -> int:
            hits = 0
            for name in decoded:
                try:
                    parts = safe_key(name, self.archive.display).split("/")
                except ValueError:
                    continue
                hits += any("/".join(parts[i:]) in listed for i in range(len(parts)))
            return hits

        self.archive.redecode(score)
        self.prefix = self.locate(self.archive) or ""

    def images(self) -> dict[str, Found]:
        n = len(self.prefix)
        found = (Found(k[n:], member=m) for k, m in self.archive.files.items() if k.startswith(self.prefix))
        return {f.key: f for f in found if is_image_name(f.key) and not f.hidden}

    def find(self, key: str) -> Found | None:
        m = self.archive.files.get(self.prefix + key)
        return Found(key, member=m) if m is not None else None

    def probe(self, found: list[Found], progress: Progress | None, workers: int,
              extract_to: Path | None) -> tuple[list[Path | None], list[ImageProbe]]:
        """With `extract_to` (an import): extract the listed members and probe the files. Without (a check):
        probe the bytes read from the archive, writing nothing."""
        members = [f.member for f in found]
        if extract_to is not None:
            written = self.archive.extract(members, extract_to, self.budget)
            paths: list[Path | None] = [written[m.key] for m in members]
            return paths, probe_images(paths, workers=workers, verify=True, progress=progress)
        probes: dict[str, ImageProbe] = {}
        total = len(members)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            pending: list = []
            for m, data in self.archive.read(members, self.budget):
                pending.append((m.key, len(data), pool.submit(probe_bytes, data, True)))
                # bounds what is held in memory: a few members per worker, and at most IN_MEMORY bytes
                if len(pending) >= 4 * workers or sum(p[1] for p in pending) > IN_MEMORY:
                    _collect(pending, probes, progress, total)
            _collect(pending, probes, progress, total, final=True)
        return [None] * total, [probes[m.key] for m in members]


def _collect(pending: list, probes: dict, progress: Progress | None, total: int, final: bool = False) -> None:
    while pending and (final or len(pending) > 1):
        key, _, future = pending.pop(0)
        probes[key] = future.result()
        if progress and (len(probes) % 200 == 0 or len(probes) == total):
            progress(len(probes), total)


def _walk(root: Path) -> list[tuple[str, Path, bool]]:
    """(relative POSIX name, path, is a link) of every visible image file; hidden folders are skipped and
    linked folders not followed (a listed name inside one is still found by `find`, and policed there)."""
    out = []
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            name = f"{rel}{e.name}"
            if e.is_dir(follow_symlinks=False):
                stack.append((e.path, name + "/"))
            elif is_image_name(e.name) and e.is_file():  # follows a link to a regular file; FIFOs are not files
                out.append((name, Path(e.path), e.is_symlink()))
    return out


def list_image_files(root: Path) -> dict[str, Path]:
    """Every visible image file under root, keyed by its NFC relative POSIX path."""
    return {f.key: f.path for f in FolderImages(root, str(root)).images().values()}

"""Finding the COCO JSON and the images in what the user points at: an archive, a folder, or JSON + folder.

Every server path is resolved and checked against the acting user's policy first (the same refusal
whether it exists or not); archives are read through `archives.Archive`, which refuses unsafe ones
before writing anything. Messages name what the user gave (their path, their archive), never our
temp folders.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dsgen_core.importing.archive_limits import ArchiveLimits, Budget
from dsgen_core.importing.archive_names import DECLARED, LABELS
from dsgen_core.importing.archives import Archive, archive_kind, safe_key
from dsgen_core.importing.errors import SourceError
from dsgen_core.importing.image_files import (
    IMAGE_EXTENSIONS,
    ArchiveImages,
    FolderImages,
    is_image_name,
    list_image_files,
)
from dsgen_core.importing.server_paths import PathPolicy, PathRefused

__all__ = ["IMAGE_EXTENSIONS", "ImportSource", "SeveralAnnotations", "SourceError", "list_image_files",
           "normalize_file_name", "resolve_source"]

ANYWHERE = PathPolicy(roots=None, forbidden=())


class SeveralAnnotations(SourceError):
    """The export holds more than one annotation file: the user says which (`choices`, relative names)."""

    def __init__(self, where: str, choices: list[str]):
        self.choices = choices
        super().__init__(f"{where}: several annotation files ({', '.join(choices)}); choose the one to import "
                         "(--annotations NAME, or 'Annotation file' on the Import page)")


@dataclass
class ImportSource:
    json_path: Path
    images: FolderImages | ArchiveImages | None  # None: no images folder (annotations only)
    label: str  # what the user gave: their path or their archive's name
    archive: Archive | None = None
    work_dir: Path | None = None  # our own temp folder for an archive's members, removed after the import
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def extracted(self) -> bool:
        """The images come out of the archive into our temp folder (so storing may move them)."""
        return isinstance(self.images, ArchiveImages)

    def cleanup(self) -> None:
        if self.archive is not None:
            self.archive.close()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _kind(path: Path) -> str:
    """"file", "folder", "missing", or what else it is (never opened: a FIFO would block the reader)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from exc
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device"}.get(stat.S_IFMT(mode), "a special file")


def _require(path: Path, label: str, want: str) -> None:
    kind = _kind(path)
    if kind == "missing":
        raise SourceError(f"{label}: no such file or folder")
    if kind != want:
        what = {"file": "a file", "folder": "a folder"}.get(kind, kind)
        raise SourceError(f"{label} is {what}; expected {'a folder' if want == 'folder' else 'a regular file'}")


def choose_annotation(candidates: list[str], annotations: str | None, where: str,
                      others: list[str] = ()) -> str:
    """The annotation file: the one asked for (a relative name, matched loosely against `candidates` and
    the other JSON files `others`), else the only candidate."""
    if annotations:
        wanted = _annotation_key(annotations, where)
        pool = list(dict.fromkeys([*candidates, *others]))
        hits = [c for c in pool if c == wanted] or [
            c for c in pool if c.endswith("/" + wanted) or wanted.endswith("/" + c)]
        if len(hits) == 1:
            return hits[0]
        raise SourceError(f"{where}: no annotation file {annotations!r} (found: {', '.join(candidates) or 'none'})")
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SourceError(f"{where}: no COCO annotation file found (expected annotations/instances_default.json "
                          "as in a CVAT 'COCO 1.0' export)")
    raise SeveralAnnotations(where, candidates)


def _annotation_key(annotations: str, where: str) -> str:
    try:
        return safe_key(annotations, where)
    except SourceError:
        raise SourceError(f"{where}: the annotation file {annotations!r} must lie inside the export") from None


def resolve_source(
    path: Path | str, images: Path | str | None = None, work_dir: Path | None = None,
    annotations: Path | str | None = None, policy: PathPolicy | None = None, label: str | None = None,
    limits: ArchiveLimits | None = None,
) -> ImportSource:
    """Locate the annotation JSON and the images; an archive's annotation file is extracted into `work_dir`."""
    policy = policy or ANYWHERE
    label = label or str(path)
    try:
        real = policy.check(path)
        images_real = policy.check(images, "images folder") if images else None
        annotations_abs = annotations is not None and Path(os.path.expanduser(str(annotations))).is_absolute()
        ann_real = policy.check(annotations, "annotation file") if annotations_abs else None
    except PathRefused as exc:
        raise SourceError(str(exc)) from exc
    if images_real is not None:
        _require(images_real, str(images), "folder")
    kind = _kind(real)
    if kind == "missing":
        raise SourceError(f"{label}: no such file or folder")
    if kind == "file" and archive_kind(real):
        if ann_real is not None:
            raise SourceError(f"{label}: --annotations names a file inside the archive, not a server path")
        return _from_archive(real, label, work_dir, annotations, images_real, images, policy, limits)
    if kind == "file":
        if real.suffix.lower() != ".json":
            raise SourceError(f"{label}: expected a CVAT COCO 1.0 zip (or .tar, .tar.gz, .tgz), a folder, "
                              "or a .json annotation file")
        return ImportSource(json_path=real, label=label, images=FolderImages(images_real, str(images), policy)
                            if images_real else None)
    if kind != "folder":
        raise SourceError(f"{label} is {kind}, not a file or folder; give the export's zip, folder or .json")
    return _from_folder(real, label, annotations, ann_real, images_real, images, policy)


def _from_folder(real: Path, label: str, annotations: Path | str | None, ann_real: Path | None,
                 images_real: Path | None, images: Path | str | None, policy: PathPolicy) -> ImportSource:
    root = _find_export_root(real)
    shown = _shown(label, real, root)
    if ann_real is not None:
        json_path, json_label = ann_real, str(annotations)
    else:
        wanted = str(annotations) if annotations else None
        key = _annotation_key(wanted, shown) if wanted else None
        others = [key] if key and root.joinpath(*key.split("/")).is_file() else []
        rel = choose_annotation(_folder_candidates(root), wanted, shown, others)
        json_label = f"{shown}/{rel}"
        json_path = _checked(policy, root.joinpath(*rel.split("/")), "annotation file", json_label)
    _require(json_path, json_label, "file")
    if images_real is not None:
        return ImportSource(json_path, FolderImages(images_real, str(images), policy), label)
    folder, folder_label = (root / "images", f"{shown}/images") if (root / "images").is_dir() else (root, shown)
    if folder == root and not any(is_image_name(p.name) and p.is_file() for p in root.iterdir()):
        return ImportSource(json_path, None, label)
    folder = _checked(policy, folder, "images folder", folder_label)
    return ImportSource(json_path, FolderImages(folder, folder_label, policy), label)


def _checked(policy: PathPolicy, path: Path, what: str, shown: str) -> Path:
    try:
        return policy.check(path, what, shown)
    except PathRefused as exc:
        raise SourceError(str(exc)) from exc


def _shown(label: str, real: Path, root: Path) -> str:
    """The export root as the user would write it: their path plus the folders we descended into."""
    return label if root == real else f"{label.rstrip('/')}/{root.relative_to(real).as_posix()}"


def _folder_candidates(root: Path) -> list[str]:
    ann = root / "annotations"
    found = sorted(f"annotations/{p.name}" for p in ann.glob("*.json")) if ann.is_dir() else []
    return found or sorted(p.name for p in root.glob("*.json"))


def _find_export_root(folder: Path) -> Path:
    """A CVAT zip unpacks to annotations/ + images/, sometimes inside one top-level folder."""
    if (folder / "annotations").is_dir() or list(folder.glob("*.json")):
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("__MACOSX")]
    if len(children) == 1:
        return _find_export_root(children[0])
    return folder


def _from_archive(real: Path, label: str, work_dir: Path | None, annotations: Path | str | None,
                  images_real: Path | None, images: Path | str | None, policy: PathPolicy,
                  limits: ArchiveLimits | None) -> ImportSource:
    if work_dir is None:
        raise SourceError("an archive needs a work folder to be read into")
    limits = limits or ArchiveLimits.for_folder(work_dir.parent)
    archive = Archive(real, label, limits)
    try:
        prefix = _archive_root(archive)
        where = f"{label}:{prefix}" if prefix else label
        candidates, others = _archive_candidates(archive, prefix)
        rel = choose_annotation(candidates, str(annotations) if annotations else None, where, others)
        member = archive.files[prefix + rel]
        budget = Budget(limits, label)
        json_path = archive.extract([member], work_dir / "annotations", budget)[member.key]
        if images_real is not None:
            found = FolderImages(images_real, str(images), policy)
        elif _archive_images(archive) is not None:
            found = ArchiveImages(archive, _archive_images, budget)
        else:
            found = None
    except BaseException:
        archive.close()
        raise
    source = ImportSource(json_path, found, label, archive=archive, work_dir=work_dir)
    source.stats.update(archive=label, archive_members=len(archive.files), annotations_file=rel)
    return source


def _archive_root(archive: Archive) -> str:
    """The member prefix of the export inside the archive ("" or "task_12/"), as `_find_export_root`."""
    prefix = ""
    while True:
        n = len(prefix)
        if prefix + "annotations" in archive.folders or any(
                k.startswith(prefix) and "/" not in k[n:] and k.lower().endswith(".json") for k in archive.files):
            return prefix
        dirs = [f[n:] for f in archive.folders if f.startswith(prefix) and f[n:] and "/" not in f[n:]
                and not f[n:].startswith("__MACOSX")]
        if len(dirs) != 1:
            return prefix
        prefix += dirs[0] + "/"


def _archive_images(archive: Archive) -> str | None:
    """The prefix of the export's images: its images/ folder, else its root when images lie loose there."""
    prefix = _archive_root(archive)
    if prefix + "images" in archive.folders:
        return prefix + "images/"
    n = len(prefix)
    loose = any(k.startswith(prefix) and "/" not in k[n:] and is_image_name(k[n:]) for k in archive.files)
    return prefix if loose else None


def _archive_candidates(archive: Archive, prefix: str) -> tuple[list[str], list[str]]:
    """(the annotation files CVAT would write, every other JSON member) relative to the export root."""
    n = len(prefix)
    rels = sorted(k[n:] for k in archive.files if k.startswith(prefix) and k.lower().endswith(".json"))
    found = [r for r in rels if r.startswith("annotations/") and r.count("/") == 1]
    return found or [r for r in rels if "/" not in r], rels


def encoding_note(archive: Archive) -> tuple[dict[str, int], list[str]]:
    """Per decoding the number of member names, and one line for each undeclared decoding with an example."""
    counts = archive.name_encodings()
    guessed = []
    for how, n in counts.most_common():
        if how in DECLARED:
            continue
        example = next(m.stored for m in archive.members if m.how == how)
        guessed.append(f"{n} name(s) read as {LABELS.get(how, how)}, e.g. {example!r}")
    return dict(counts), guessed


def normalize_file_name(name: str) -> str | None:
    """The file_name as a safe relative POSIX path, or None when it would leave the images folder."""
    try:
        key = safe_key(name, "")
    except SourceError:
        return None
    return key or None

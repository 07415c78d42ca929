"""Finding the COCO JSON and the images folder in what the user points at (zip, folder, or JSON + folder).

Zips are extracted safely: no absolute paths, no `..`, no links, bounded size.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_ZIP_BYTES = int(os.environ.get("DSGEN_MAX_ZIP_BYTES", str(500 * 1024**3)))
MAX_ZIP_RATIO = 200  # uncompressed / compressed for one member: beyond this it is a zip bomb


class SourceError(ValueError):
    """The path given cannot be imported; the message says what and where."""


@dataclass
class ImportSource:
    json_path: Path
    images_root: Path | None  # None: no images folder (annotations only)
    extracted_dir: Path | None = None  # our own temp folder, removed after the import
    notes: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        if self.extracted_dir is not None:
            shutil.rmtree(self.extracted_dir, ignore_errors=True)


def _pick_json(folder: Path) -> Path:
    ann = folder / "annotations"
    if (ann / "instances_default.json").is_file():
        return ann / "instances_default.json"
    candidates = sorted(ann.glob("*.json")) if ann.is_dir() else []
    if not candidates:
        candidates = sorted(p for p in folder.glob("*.json"))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SourceError(
            f"{folder}: no COCO annotation file found (expected annotations/instances_default.json "
            "as in a CVAT 'COCO 1.0' export)"
        )
    names = ", ".join(str(c.relative_to(folder)) for c in candidates)
    raise SourceError(f"{folder}: several annotation files ({names}); pass the one to import with --annotations")


def _find_export_root(folder: Path) -> Path:
    """A CVAT zip unpacks to annotations/ + images/, sometimes inside one top-level folder."""
    if (folder / "annotations").is_dir() or list(folder.glob("*.json")):
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("__MACOSX")]
    if len(children) == 1:
        return _find_export_root(children[0])
    return folder


def resolve_source(
    path: Path, images: Path | None = None, work_dir: Path | None = None, annotations: Path | None = None
) -> ImportSource:
    """Locate the annotation JSON and images root; extract a zip into `work_dir` first."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    extracted = None
    if path.is_file() and zipfile.is_zipfile(path):
        if work_dir is None:
            raise SourceError("a zip needs a work folder to be extracted into")
        extract_zip(path, work_dir)
        extracted, root = work_dir, _find_export_root(work_dir)
    elif path.is_file():
        if path.suffix.lower() != ".json":
            raise SourceError(f"{path}: expected a CVAT COCO 1.0 zip, a folder, or a .json annotation file")
        if images is not None and not Path(images).is_dir():
            raise SourceError(f"{images}: images folder not found")
        return ImportSource(json_path=path, images_root=Path(images) if images else None)
    else:
        root = _find_export_root(path)
    json_path = Path(annotations) if annotations else _pick_json(root)
    if not json_path.is_file():
        raise SourceError(f"{json_path}: annotation file not found")
    images_root = Path(images) if images else (root / "images" if (root / "images").is_dir() else None)
    if images_root is None:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        images_root = root if loose else None
    return ImportSource(json_path=json_path, images_root=images_root, extracted_dir=extracted)


def _safe_member_path(name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0].endswith(":")):
        raise SourceError(f"zip member {name!r} would be written outside the import folder; refusing the archive")
    return p


def extract_zip(zip_path: Path, dest: Path) -> int:
    """Extract after checking every member; returns the number of files written."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            _safe_member_path(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise SourceError(f"zip member {info.filename!r} is a symbolic link; refusing the archive")
            total += info.file_size
            if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_ZIP_RATIO and info.file_size > 1 << 24:
                raise SourceError(f"zip member {info.filename!r} expands {info.file_size / info.compress_size:.0f}x; refusing")
        if total > MAX_ZIP_BYTES:
            raise SourceError(f"{zip_path.name}: {total} bytes uncompressed exceeds the limit of {MAX_ZIP_BYTES}")
        count = 0
        base = dest.resolve()
        for info in infos:
            rel = _safe_member_path(info.filename)
            target = (base / rel).resolve()
            if not target.is_relative_to(base):
                raise SourceError(f"zip member {info.filename!r} escapes the import folder; refusing")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            count += 1
    return count


def list_image_files(root: Path) -> dict[str, Path]:
    """Every image file under root, keyed by its POSIX path relative to root."""
    found: dict[str, Path] = {}
    root_str = str(root)
    for dirpath, dirnames, filenames in os.walk(root_str):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                full = os.path.join(dirpath, name)
                found[os.path.relpath(full, root_str).replace(os.sep, "/")] = Path(full)
    return found


def normalize_file_name(name: str) -> str | None:
    """The file_name as a safe relative POSIX path, or None when it would leave the images folder."""
    p = PurePosixPath(name.replace("\\", "/"))
    parts = [part for part in p.parts if part not in ("", ".")]
    if p.is_absolute() or ".." in parts or not parts:
        return None
    return "/".join(parts)

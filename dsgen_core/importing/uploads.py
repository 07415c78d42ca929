"""Archives uploaded in the browser: one folder per user under <DSGEN_HOME>/tmp/uploads, gone after the import.

Each upload keeps its own file name (messages name it) inside a random folder. An import removes
its upload when it ends, whatever the outcome; on start, uploads older than
DSGEN_UPLOAD_MAX_AGE_HOURS (24) that no queued or running job reads are removed too.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dsgen_core.errors import InvalidRequest
from dsgen_core.importing.archives import ARCHIVE_SUFFIXES

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.config import Settings

_UNSAFE = re.compile(r"[^\w.\- ()\[\]+]", re.UNICODE)


def uploads_root(settings: Settings) -> Path:
    return settings.tmp_root / "uploads"


def user_folder(settings: Settings, user_id: int) -> Path:
    return uploads_root(settings) / f"u{int(user_id)}"


def new_upload(settings: Settings, user_id: int, filename: str) -> Path:
    """A fresh path in the user's upload folder for an archive called `filename` (sanitized)."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).strip(". ") or "upload.zip"
    if not name.lower().endswith(ARCHIVE_SUFFIXES):
        raise InvalidRequest(f"{filename}: upload a CVAT export as .zip, .tar, .tar.gz or .tgz")
    folder = user_folder(settings, user_id) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder / name[:200]


def save_upload(settings: Settings, user_id: int, stream: BinaryIO, filename: str) -> Path:
    """Copy an uploaded archive into the user's upload folder under its own name."""
    target = new_upload(settings, user_id, filename)
    with open(target, "wb") as out:
        shutil.copyfileobj(stream, out, 16 << 20)
    return target


def upload_of(settings: Settings, path: str | Path) -> Path | None:
    """The upload folder holding `path`, when it is an upload."""
    try:
        rel = Path(path).resolve().relative_to(uploads_root(settings).resolve())
    except (ValueError, OSError):
        return None
    return uploads_root(settings).joinpath(*rel.parts[:2]) if len(rel.parts) >= 3 else None


def discard(settings: Settings, path: str | Path) -> bool:
    """Remove the upload that `path` is (no-op for any other path); True if something was removed."""
    folder = upload_of(settings, path)
    if folder is None or not folder.exists():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def sweep_abandoned(app: App, max_age_hours: float | None = None) -> int:
    """Remove uploads older than the limit that no queued or running import reads; returns how many."""
    root = uploads_root(app.settings)
    if not root.is_dir():
        return 0
    hours = max_age_hours if max_age_hours is not None else float(os.environ.get("DSGEN_UPLOAD_MAX_AGE_HOURS", 24))
    cutoff = time.time() - hours * 3600
    old = [p for user in root.iterdir() if user.is_dir() for p in user.iterdir() if _mtime(p) < cutoff]
    old += [p for p in root.iterdir() if p.is_file() and _mtime(p) < cutoff]  # the flat layout of earlier versions
    if not old:
        return 0
    from sqlalchemy import select

    from dsgen_core.catalog.models import Job
    from dsgen_core.jobs.queue import QUEUED, RUNNING

    with app.catalog.session() as s:
        sources = [str((j.params or {}).get("source_path", "")) for j in
                   s.scalars(select(Job).where(Job.status.in_((QUEUED, RUNNING))))]
    busy = {upload_of(app.settings, p) for p in sources} | {Path(p) for p in sources}
    removed = 0
    for p in old:
        if p in busy:
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed += 1
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()

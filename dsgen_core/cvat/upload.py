"""Pure planning of image uploads: flat frame names and batches whose request bodies stay under a bound."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from dsgen_core.cvat.models import UploadFile
from dsgen_core.cvat.multipart import fields_size, part_overhead, quoted_len

__all__ = ["Batch", "check_names", "flat_names", "plan_batches"]

BOUNDARY_LEN = len("dsgen-") + 24  # MultipartBody's boundary
_TAIL = BOUNDARY_LEN + 6  # --boundary--\r\n


def flat_names(rel_paths: Sequence[str], sep: str = "__") -> list[str]:
    """Frame names for CVAT from relative paths: `a/b/c.jpg` → `a__b__c.jpg`, unique, in input order.

    CVAT keeps only the base name of a multipart upload, so nested paths would collide; the caller
    keeps the returned list as its frame → image mapping.
    """
    out: list[str] = []
    seen: set[str] = set()
    for p in rel_paths:
        name = sep.join(part for part in p.replace("\\", "/").split("/") if part not in ("", "."))
        if not name:
            raise ValueError(f"empty file name in upload: {p!r}")
        cand, n = name, 1
        while cand in seen:
            stem, ext = posixpath.splitext(name)
            cand, n = f"{stem}~{n}{ext}", n + 1
        seen.add(cand)
        out.append(cand)
    return out


def check_names(files: Sequence[UploadFile]) -> None:
    """CVAT needs flat, unique names (it drops directories from uploaded file names)."""
    seen: set[str] = set()
    for f in files:
        if not f.name or "/" in f.name or "\\" in f.name or f.name in (".", ".."):
            raise ValueError(f"frame name {f.name!r} must be a flat file name (use cvat.flat_names)")
        if f.name in seen:
            raise ValueError(f"duplicate frame name {f.name!r} in upload")
        seen.add(f.name)


@dataclass
class Batch:
    files: list[tuple[int, UploadFile]] = field(default_factory=list)  # (index in upload, file)
    size: int = _TAIL  # exact multipart body size


def plan_batches(
    files: Sequence[UploadFile], max_bytes: int, max_files: int, field_base: str = "client_files",
    fields: Sequence[tuple[str, str]] = (),
) -> tuple[list[Batch], list[UploadFile]]:
    """Pack files in order into multipart batches of at most `max_bytes` and `max_files` each.

    Every batch carries `fields` first (CVAT checks each batch's `image_quality`), and they count against
    the bound. Field names restart at `client_files[0]` in each batch. A file that cannot fit even alone is
    returned separately (it goes by TUS in chunks instead).
    """
    empty = _TAIL + fields_size(BOUNDARY_LEN, fields)
    # a part's framing = fixed bytes + its quoted field name + its quoted file name: framed once, then added up
    fixed = part_overhead(BOUNDARY_LEN, "", "")
    base = quoted_len(field_base) + 2  # "[" and "]" around the index

    def overhead(index: int, name_len: int) -> int:
        return fixed + base + len(str(index)) + name_len

    batches: list[Batch] = []
    too_big: list[UploadFile] = []
    cur = Batch(size=empty)
    for i, f in enumerate(files):
        size, name_len = f.size, quoted_len(f.name)
        if empty + overhead(0, name_len) + size > max_bytes:
            too_big.append(f)
            continue
        part = overhead(len(cur.files), name_len) + size
        if cur.files and (cur.size + part > max_bytes or len(cur.files) >= max_files):
            batches.append(cur)
            cur = Batch(size=empty)
            part = overhead(0, name_len) + size
        cur.size += part
        cur.files.append((i, f))
    if cur.files:
        batches.append(cur)
    return batches, too_big

"""Where image bytes live, behind one small interface (local folder now; S3 later).

URIs: `blob://<sha256>` for content-addressed bytes in the managed store (one copy however
many versions use them), `file:///abs/path` for files registered in place (never copied).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, unquote, urlparse


class Storage(Protocol):
    """What the rest of dsgen needs from a byte store."""

    def put_file(self, src: Path, sha256: str, suffix: str, move: bool = False) -> str: ...

    def open(self, uri: str) -> BinaryIO: ...

    def local_path(self, uri: str) -> Path | None: ...

    def exists(self, uri: str) -> bool: ...

    def delete(self, uri: str) -> bool: ...


def file_uri(path: Path) -> str:
    """URI for a file registered in place."""
    return "file://" + quote(str(path.resolve()))


class LocalStorage:
    """Content-addressed blobs under one folder; in-place files are read where they are."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _blob_path(self, key: str) -> Path:
        if "/" in key or ".." in key or not key:
            raise ValueError(f"invalid blob key: {key!r}")
        return self.root / "blobs" / key[:2] / key

    def put_file(self, src: Path, sha256: str, suffix: str, move: bool = False) -> str:
        """Store `src` under its hash; a blob already present is not written again."""
        key = sha256 + suffix.lower()
        dst = self._blob_path(key)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
            if move:
                try:
                    os.replace(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
            else:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        return f"blob://{key}"

    def local_path(self, uri: str) -> Path | None:
        parsed = urlparse(uri)
        if parsed.scheme == "blob":
            return self._blob_path(parsed.netloc + parsed.path)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        return None

    def open(self, uri: str) -> BinaryIO:
        path = self.local_path(uri)
        if path is None:
            raise ValueError(f"unsupported storage URI: {uri}")
        return open(path, "rb")

    def exists(self, uri: str) -> bool:
        path = self.local_path(uri)
        return bool(path and path.exists())

    def delete(self, uri: str) -> bool:
        """Remove a managed blob (never an in-place file: those belong to the user); True if removed."""
        if urlparse(uri).scheme != "blob":
            return False
        path = self.local_path(uri)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

"""Zip and tar archives read safely: every member is checked before a byte is written.

Refused: names leaving the folder (absolute, `..`, drive letters), links, devices and FIFOs, encrypted
or unreadable members, a member stored twice, a declared total or whole-archive ratio past the limits.
While reading, every byte counts against the limit whatever the headers say. Nothing outside the
members asked for is ever written: an import extracts the annotation file and the listed images, a
check only the annotation file.
"""

from __future__ import annotations

import errno
import stat
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from dsgen_core.importing import archive_names as names
from dsgen_core.importing.archive_limits import RATIO_FLOOR, ArchiveLimits, Budget, human
from dsgen_core.importing.errors import SourceError

CHUNK = 1 << 20
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
               zipfile.ZIP_LZMA: "lzma"}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ARCHIVE_SUFFIXES = (".zip", *TAR_SUFFIXES)
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError, OSError, RuntimeError,
            NotImplementedError, ValueError)


@dataclass
class Member:
    """One file or folder of an archive under the name it is matched by."""

    key: str  # NFC, relative POSIX path without `.` parts: what the annotations' file names are matched to
    stored: str  # the name as decoded, for messages
    raw: bytes
    how: str  # how the name was decoded (see archive_names.LABELS; "legacy" until the code page is chosen)
    size: int
    is_dir: bool
    order: int  # position of the data in the archive: reading in this order never seeks back
    ref: Any  # zipfile.ZipInfo | tarfile.TarInfo
    legacy: bool = False  # neither marked nor valid UTF-8: decoded with the archive's legacy code page

    @property
    def hidden(self) -> bool:
        return any(part.startswith(".") for part in self.key.split("/"))


def archive_kind(path: Path) -> str | None:
    """"zip", "tar", or None for other files; by content first, so a renamed archive is still read."""
    with open(path, "rb") as f:
        head = f.read(512)
    lower = path.name.lower()
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")) or zipfile.is_zipfile(path):
        return "zip"
    if head.startswith(_COMPRESSED_MAGIC) or head[257:262] == b"ustar" or lower.endswith(TAR_SUFFIXES):
        return "tar"
    return "zip" if lower.endswith(".zip") else None


def safe_key(name: str, archive: str) -> str:
    """The member name as a relative POSIX path; refuses the archive when it would leave its folder."""
    p = PurePosixPath(name.replace("\\", "/"))
    parts = [part for part in p.parts if part not in ("", ".")]
    if p.is_absolute() or ".." in parts or (parts and parts[0].endswith(":")):
        raise SourceError(f"{archive}: member {name!r} would be written outside the import folder; "
                          "refusing the archive")
    return names.nfc("/".join(parts))


class Archive:
    """An opened, checked archive: `files` maps each file's key to its member."""

    def __init__(self, path: Path, display: str, limits: ArchiveLimits):
        self.path, self.display, self.limits = path, display, limits
        self.kind = archive_kind(path)
        self.members: list[Member] = []
        self.skipped = 0  # __MACOSX resource forks: never extracted, never reported as unlisted
        self.legacy_encoding: str | None = None
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None
        try:
            self._scan()
            self._decode_legacy()
            self._check_totals()
        except SourceError:
            self.close()
            raise
        except _DAMAGED as exc:
            self.close()
            if self.kind == "tar" and not self.members and not path.name.lower().endswith(TAR_SUFFIXES):
                raise SourceError(f"{display} is compressed but not a tar archive; expected a CVAT zip, a .tar, "
                                  ".tar.gz or .tgz, an export folder or a .json file") from exc
            raise SourceError(f"{display} is a damaged {self.kind or 'archive'} ({_reason(exc)}); "
                              "download or copy it again") from exc

    # ----- scanning --------------------------------------------------------------------------------

    def _scan(self) -> None:
        if self.kind == "zip":
            if not zipfile.is_zipfile(self.path):
                raise SourceError(f"{self.display} is a damaged zip: its end (the central directory) is missing, "
                                  "as in a download that stopped early; download or copy it again")
            self._handle = zipfile.ZipFile(self.path)
            for info in self._handle.infolist():
                self._add_zip(info)
        else:
            self._handle = tarfile.open(self.path, "r:*", encoding="utf-8", errors="surrogateescape")
            raw = _raw_file(self._handle)
            declared = 0
            for info in self._handle:
                self._add_tar(info)
                declared += info.size
                if raw is not None and declared > RATIO_FLOOR and declared / max(raw.tell(), 1) > self.limits.max_ratio:
                    self._refuse_ratio(declared, raw.tell())  # a tar bomb: stop before reading all of it

    def _add(self, ref: Any, raw: bytes, decoded: str | None, how: str, size: int, is_dir: bool, order: int) -> None:
        if len(self.members) >= self.limits.max_members:
            raise SourceError(f"{self.display} has more than {self.limits.max_members:,} members "
                              "(DSGEN_ARCHIVE_MAX_MEMBERS); refusing the archive")
        shown = decoded if decoded is not None else raw.decode("cp437")
        key = safe_key(shown, self.display)
        if key.split("/")[0] == "__MACOSX":
            self.skipped += 1
            return
        if key:
            self.members.append(Member(key, shown, raw, how, size, is_dir, order, ref, legacy=decoded is None))

    def _add_zip(self, info: zipfile.ZipInfo) -> None:
        raw, decoded, how = names.zip_name(info)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        shown = decoded or info.filename
        if kind == stat.S_IFLNK:
            raise SourceError(f"{self.display}: member {shown!r} is a symbolic link; refusing the archive")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise SourceError(f"{self.display}: member {shown!r} is a device, FIFO or socket; refusing the archive")
        if info.flag_bits & 0x1:
            raise SourceError(f"{self.display}: member {shown!r} is encrypted (password-protected); "
                              "dsgen cannot read it: re-create the archive without a password")
        if info.compress_type not in ZIP_METHODS and not info.is_dir():
            raise SourceError(f"{self.display}: member {shown!r} uses compression method {info.compress_type} "
                              f"(9 is Deflate64); dsgen reads {', '.join(ZIP_METHODS.values())}: re-create the "
                              "archive with plain Deflate (e.g. `zip -r`, or 7-Zip with method Deflate)")
        self._add(info, raw, decoded, how, info.file_size, info.is_dir(), info.header_offset)

    def _add_tar(self, info: tarfile.TarInfo) -> None:
        raw, decoded, how = names.tar_name(info)
        shown = decoded or info.name
        if info.issym() or info.islnk():
            raise SourceError(f"{self.display}: member {shown!r} is a link; refusing the archive")
        if not (info.isreg() or info.isdir()):
            raise SourceError(f"{self.display}: member {shown!r} is a device, FIFO or other special file; "
                              "refusing the archive")
        self._add(info, raw, decoded, how, info.size if info.isreg() else 0, info.isdir(), info.offset_data)

    def _decode_legacy(self, score: Callable[[list[str]], int] | None = None) -> None:
        legacy = [m for m in self.members if m.legacy]
        if legacy:
            self.legacy_encoding = names.choose_legacy([m.raw for m in legacy], score)
            for m in legacy:
                m.stored = m.raw.decode(self.legacy_encoding)
                m.key, m.how = safe_key(m.stored, self.display), self.legacy_encoding
        self._index()

    def _index(self) -> None:
        """`files` by key; a file stored twice, or a name used as file and folder, refuses the archive."""
        self.files: dict[str, Member] = {}
        self.folders: set[str] = set()
        seen: dict[str, list[str]] = {}
        for m in self.members:
            if m.is_dir:
                self.folders.add(m.key)
                continue
            seen.setdefault(m.key, []).append(m.stored)
            self.files[m.key] = m
            self.folders.update("/".join(m.key.split("/")[:i]) for i in range(1, m.key.count("/") + 1))
        twice = [stored for stored in seen.values() if len(stored) > 1]
        if twice:
            shown = "; ".join(" and ".join(repr(s) for s in v) for v in twice[:5])
            raise SourceError(f"{self.display}: {len(twice)} file(s) stored more than once ({shown}); which copy "
                              "is meant is ambiguous, so the archive is refused: re-create it")
        clash = sorted(set(self.files) & self.folders)
        if clash:
            raise SourceError(f"{self.display}: {clash[0]!r} is both a file and a folder; refusing the archive")

    def _check_totals(self) -> None:
        declared = sum(m.size for m in self.files.values())
        if declared > self.limits.max_bytes:
            raise SourceError(f"{self.display} expands to {human(declared)}, more than the limit of "
                              f"{human(self.limits.max_bytes)} ({self.limits.origin}); refusing the archive")
        compressed = self.path.stat().st_size
        if declared > RATIO_FLOOR and declared / max(compressed, 1) > self.limits.max_ratio:
            self._refuse_ratio(declared, compressed)

    def _refuse_ratio(self, declared: int, compressed: int) -> None:
        raise SourceError(f"{self.display}: {human(compressed)} expand to {human(declared)} "
                          f"({declared / max(compressed, 1):,.0f}x, limit {self.limits.max_ratio:,.0f}x, "
                          "DSGEN_ARCHIVE_MAX_RATIO): that is a zip bomb, not a dataset; refusing the archive")

    # ----- what the report says about names -------------------------------------------------------

    def redecode(self, score: Callable[[list[str]], int]) -> None:
        """Choose the legacy code page again, now knowing which names the annotations list."""
        if self.legacy_encoding is not None:
            self._decode_legacy(score)

    def name_encodings(self) -> Counter[str]:
        return Counter(m.how for m in self.members)

    # ----- reading ----------------------------------------------------------------------------------

    def read(self, members: list[Member], budget: Budget) -> Iterator[tuple[Member, bytes]]:
        """Each member's bytes, in archive order (a compressed tar is never read backwards)."""
        for m in sorted(members, key=lambda m: m.order):
            with self._open(m) as src:
                yield m, b"".join(self._chunks(m, src, budget))

    def extract(self, members: list[Member], dest: Path, budget: Budget) -> dict[str, Path]:
        """Write the members under `dest` (by key); returns key → path. Never overwrites a file."""
        out: dict[str, Path] = {}
        for m in sorted(members, key=lambda m: m.order):
            target = dest.joinpath(*m.key.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with self._open(m) as src, open(target, "xb") as f:
                    for chunk in self._chunks(m, src, budget):
                        f.write(chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise SourceError(f"{self.display}: the disk filled up while extracting {m.stored!r}") from exc
                raise
            out[m.key] = target
        return out

    def _open(self, m: Member) -> IO[bytes]:
        try:
            if isinstance(self._handle, zipfile.ZipFile):
                return self._handle.open(m.ref)
            f = self._handle.extractfile(m.ref)
            if f is None:
                raise SourceError(f"{self.display}: member {m.stored!r} has no data")
            return f
        except SourceError:
            raise
        except _DAMAGED as exc:
            raise self._damaged(m, exc) from exc

    def _chunks(self, m: Member, src: IO[bytes], budget: Budget) -> Iterator[bytes]:
        got = 0
        while True:
            try:
                chunk = src.read(CHUNK)
            except _DAMAGED as exc:
                raise self._damaged(m, exc) from exc
            if not chunk:
                return
            got += len(chunk)
            if got > m.size:
                raise SourceError(f"{self.display}: member {m.stored!r} holds more than the {human(m.size)} its "
                                  "header says; refusing the archive")
            budget.take(len(chunk))
            yield chunk

    def _damaged(self, m: Member, exc: BaseException) -> SourceError:
        return SourceError(f"{self.display} is damaged: member {m.stored!r}: {_reason(exc)}; "
                           "download or copy it again")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _raw_file(tf: tarfile.TarFile) -> Any:
    """The compressed file under a tar's decompressor, to see how far into it the scan has read."""
    inner = tf.fileobj
    for attr in ("fileobj", "_fp"):
        if hasattr(inner, attr) and hasattr(getattr(inner, attr), "tell"):
            return getattr(inner, attr)
    return inner if hasattr(inner, "tell") else None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return {"Bad CRC-32": "a checksum does not match"}.get(text.split(" for file")[0], text)

"""How much one archive may expand to: limits checked on the headers first, then on every byte written.

Defaults follow the free space of the data folder's tmp folder when the import starts, so a bomb
cannot fill the disk whatever the machine; the settings below override them.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dsgen_core.importing.errors import SourceError

DISK_SHARE = 0.5  # of the tmp folder's free space one archive may fill
MAX_RATIO = 200.0  # uncompressed / compressed of the whole archive; deflate bombs reach ~1000
RATIO_FLOOR = 64 << 20  # below this many uncompressed bytes the ratio is not judged (harmless either way)
MAX_MEMBERS = 1_000_000
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`12345`, `500M`, `20GiB`, `1.5T` → bytes (powers of 1024)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 20G)")
    unit = (m.group(2) or "b")[0].lower()
    return int(float(m.group(1)) * 1024 ** "bkmgt".index(unit))


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int  # written by one archive (declared total checked first, then every byte written)
    max_ratio: float
    max_members: int
    origin: str  # how max_bytes was set, for the refusal message

    @classmethod
    def for_folder(cls, tmp: Path) -> ArchiveLimits:
        """DSGEN_ARCHIVE_MAX_BYTES, else DSGEN_ARCHIVE_DISK_SHARE (0.5) of the free space under `tmp`."""
        setting = os.environ.get("DSGEN_ARCHIVE_MAX_BYTES") or os.environ.get("DSGEN_MAX_ZIP_BYTES")
        if setting:
            max_bytes, origin = parse_size(setting), "DSGEN_ARCHIVE_MAX_BYTES"
        else:
            tmp.mkdir(parents=True, exist_ok=True)
            share = float(os.environ.get("DSGEN_ARCHIVE_DISK_SHARE", DISK_SHARE))
            free = shutil.disk_usage(tmp).free
            max_bytes = int(free * share)
            origin = f"{share:.0%} of the {human(free)} free in the data folder (DSGEN_ARCHIVE_DISK_SHARE)"
        return cls(
            max_bytes=max_bytes,
            max_ratio=float(os.environ.get("DSGEN_ARCHIVE_MAX_RATIO", MAX_RATIO)),
            max_members=int(os.environ.get("DSGEN_ARCHIVE_MAX_MEMBERS", MAX_MEMBERS)),
            origin=origin,
        )


class Budget:
    """Bytes written so far by one archive; `take` refuses past the limit whatever the headers said."""

    def __init__(self, limits: ArchiveLimits, archive: str):
        self.limits, self.archive, self.written = limits, archive, 0

    def take(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.max_bytes:
            raise SourceError(
                f"{self.archive}: extraction stopped after {human(self.written)}, past the limit of "
                f"{human(self.limits.max_bytes)} ({self.limits.origin}); the archive expands to more than its "
                "headers say"
            )

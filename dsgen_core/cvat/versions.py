"""Which CVAT REST variant to speak, decided once from `GET /api/server/about` (see docs/cvat.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsgen_core.cvat.errors import CvatUnsupportedVersion

__all__ = ["MIN_SUPPORTED", "Features", "ServerVersion"]

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class ServerVersion:
    """A CVAT release number; ordering compares (major, minor, patch)."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> ServerVersion:
        m = _VERSION_RE.match(str(text).strip())
        if not m:
            raise CvatUnsupportedVersion(f"CVAT reported a version we cannot read: {str(text)[:40]!r}")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


MIN_SUPPORTED = ServerVersion(2, 16, 0)


@dataclass(frozen=True)
class Features:
    """The API variant of one server version: every version switch of the client lives here (docs/cvat.md)."""

    version: ServerVersion
    annotations_import_method: str  # "PUT" before 2.38 (POST answers 400), "POST" from 2.38 (PUT answers 410)
    legacy_export_get: bool  # `GET …/annotations?format=` export; 410 from 2.32
    personal_access_tokens: bool  # `Authorization: Bearer <PAT>` from 2.48

    @classmethod
    def of(cls, version: ServerVersion) -> Features:
        if version < MIN_SUPPORTED:
            raise CvatUnsupportedVersion(
                f"CVAT {version} is too old: dsgen needs CVAT {MIN_SUPPORTED} or newer (requests API)"
            )
        return cls(
            version=version,
            annotations_import_method="POST" if version >= ServerVersion(2, 38) else "PUT",
            legacy_export_get=version < ServerVersion(2, 32),
            personal_access_tokens=version >= ServerVersion(2, 48),
        )

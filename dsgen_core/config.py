"""Settings from the environment: one data folder (DSGEN_HOME) holds the embedded default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    storage_root: Path
    lake_root: Path
    thumbs_root: Path
    tmp_root: Path

    @classmethod
    def from_env(cls, home: Path | str | None = None) -> Settings:
        """Read DSGEN_HOME / DSGEN_CATALOG_URL; everything else lives under the home folder."""
        root = Path(home or os.environ.get("DSGEN_HOME") or Path.cwd() / "dsgen-data").expanduser().resolve()
        url = os.environ.get("DSGEN_CATALOG_URL") or f"sqlite:///{root / 'catalog.db'}"
        return cls(
            home=root,
            catalog_url=url,
            storage_root=root / "storage",
            lake_root=root / "lake",
            thumbs_root=root / "thumbs",
            tmp_root=root / "tmp",
        )

    def ensure_dirs(self) -> None:
        for p in (self.home, self.storage_root, self.lake_root, self.thumbs_root, self.tmp_root):
            p.mkdir(parents=True, exist_ok=True)

"""Which server paths an acting user may import from: the import roots open to them, never the data folder.

Every path is resolved (symlinks, `..`) before it is compared, and a refusal reads the same whether
the path exists or not, so the check cannot be used to probe the server's file system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dsgen_core.errors import PermissionDenied


class PathRefused(PermissionDenied):
    """A server path outside every import root the user may use (or inside the data folder)."""


def refusal(what: str, path: str | Path, anywhere: bool = False) -> PathRefused:
    """The one message for every refused path: it says nothing about whether the path exists. Users who may
    name any path (site admins) are refused only inside the data folder, and told so."""
    if anywhere:
        return PathRefused(f"{what} {str(path)!r} is inside dsgen's data folder, which is never importable")
    return PathRefused(
        f"{what} {str(path)!r} is not inside an import root you may use; upload the files instead, "
        "or ask a site admin to open a server folder for you (Admin → Import roots)"
    )


def resolved(path: str | Path) -> Path | None:
    """The absolute path with every symlink and `..` resolved, or None when it cannot be resolved."""
    try:
        return Path(os.path.expanduser(str(path))).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte, ...
        return None


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(path == f or path.is_relative_to(f) for f in folders)


@dataclass(frozen=True)
class PathPolicy:
    """`roots` None: anywhere (site admins and the operator); `forbidden` wins over roots, `own` over both."""

    roots: tuple[Path, ...] | None
    forbidden: tuple[Path, ...]
    own: tuple[Path, ...] = ()

    def permits(self, path: Path) -> bool:
        """For a path that is already resolved."""
        if _inside(path, self.own):
            return True
        if _inside(path, self.forbidden):
            return False
        return self.roots is None or _inside(path, self.roots)

    def check(self, path: str | Path, what: str = "server path", shown: str | None = None) -> Path:
        """The resolved path, or PathRefused with the one message (naming `shown`, default the path)."""
        real = resolved(path)
        if real is None or not self.permits(real):
            raise refusal(what, shown or path, anywhere=self.roots is None and real is not None)
        return real


def everywhere_but(home: Path) -> PathPolicy:
    """The operator's policy: any path of the machine except the data folder."""
    return PathPolicy(roots=None, forbidden=(home.resolve(),))

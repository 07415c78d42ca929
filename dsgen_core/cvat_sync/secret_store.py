"""CVAT connection secrets in the catalog: sealed with the installation's key, sealed again on rotation.

Kept apart from the client so that a start (which seals plain-text secrets left from before) loads no HTTP code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from dsgen_core import secret_box as sb
from dsgen_core.catalog.cvat_models import CvatConnection
from dsgen_core.catalog.models import AuditEntry

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.users import Actor


def seal(app: App, plain: str) -> str:
    return sb.load_box(app.settings).seal(plain)


def secret_of(app: App, conn: CvatConnection) -> str:
    """The plain secret of a connection, for the client only; never log or return it."""
    return sb.load_box(app.settings).open(conn.secret, what=f"the secret of CVAT connection {conn.name!r}")


def seal_plain_secrets(app: App) -> int:
    """Encrypt the secrets stored in plain text by an older dsgen; returns how many (0 on every later start)."""
    with app.catalog.session() as s:
        plain = s.scalars(select(CvatConnection).where(~CvatConnection.secret.startswith(sb.PREFIX))).all()
        if not plain:
            return 0
        box = sb.load_box(app.settings)
        for conn in plain:
            conn.secret = box.seal(conn.secret)
        s.add(AuditEntry(user_id=None, action="secrets.seal", details={"secrets": len(plain)}))
        return len(plain)


def _reseal_all(app: App, box: sb.SecretBox) -> int:
    with app.catalog.session() as s:
        rows = s.scalars(select(CvatConnection).order_by(CvatConnection.id).with_for_update()).all()
        for conn in rows:
            conn.secret = box.reseal(conn.secret)
        return len(rows)


def rotate(app: App, actor: Actor) -> int:
    """Encrypt every secret with a new key; returns how many were re-encrypted.

    Key file: a new key is written first next to the old ones (every process can still read everything),
    the secrets are re-encrypted in one transaction, then the old keys are dropped. DSGEN_SECRET_KEY: the
    operator puts the new key first (the old one after it); rotation re-encrypts with it, and the old key can
    then be removed from the setting."""
    box = sb.load_box(app.settings)
    if box.source == sb.KEY_ENV:
        if len(box.keys) < 2:
            raise sb.SecretKeyError(f"{sb.KEY_ENV} holds one key: put a new key first and the current one after a "
                                    f"comma ({sb.KEY_ENV}=NEW,OLD), run the rotation, then drop OLD")
        count = _reseal_all(app, box)
    else:
        path = sb.key_file(app.settings)
        both = sb.SecretBox((sb.new_key(), *box.keys), str(path))
        sb.replace_key_file(path, list(both.keys))
        count = _reseal_all(app, both)
        sb.replace_key_file(path, [both.keys[0]])
    with app.catalog.session() as s:
        s.add(AuditEntry(user_id=actor.id, action="secrets.rotate",
                         details={"secrets": count, "key": "setting" if box.source == sb.KEY_ENV else "key file"}))
    return count


@dataclass(frozen=True)
class SecretKeyStatus:
    """No key and no secret: only where the key lives and how many stored secrets there are."""

    key_source: str  # "DSGEN_SECRET_KEY" or the key file's path
    keys: int  # the first encrypts; more while a rotation of DSGEN_SECRET_KEY is under way
    sealed: int
    plain: int  # left from before encryption (sealed on the next start)


def status(app: App) -> SecretKeyStatus:
    box = sb.load_box(app.settings)
    with app.catalog.session() as s:
        stored = list(s.scalars(select(CvatConnection.secret)))
    sealed = sum(1 for v in stored if v.startswith(sb.PREFIX))
    return SecretKeyStatus(box.source, len(box.keys), sealed, len(stored) - sealed)

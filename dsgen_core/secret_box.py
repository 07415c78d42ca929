"""Secrets at rest (CVAT passwords and tokens), encrypted with the installation's key (Fernet: AES-128-CBC + HMAC).

The key comes from DSGEN_SECRET_KEY (one or more Fernet keys separated by commas; the first encrypts, all
decrypt) or, without that setting, from the file DSGEN_HOME/secret.key, created with mode 0600 on first start
(one key per line, the same rule). A stored secret reads `fernet:<token>`; a value without the prefix is a
plain-text secret written before encryption existed, sealed on the next start. Keys are never logged or shown.
"""

from __future__ import annotations

import base64
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dsgen_core.config import Settings
from dsgen_core.errors import DsgenError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

PREFIX = "fernet:"
KEY_ENV = "DSGEN_SECRET_KEY"
KEY_FILE_NAME = "secret.key"


class SecretKeyError(DsgenError):
    """The key is missing, malformed, or not the one a stored secret was encrypted with."""


def new_key() -> bytes:
    """A fresh Fernet key: 32 random bytes, url-safe base64 (no need to import cryptography for that)."""
    return base64.urlsafe_b64encode(os.urandom(32))


def key_file(settings: Settings) -> Path:
    return settings.home / KEY_FILE_NAME


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


@dataclass(frozen=True)
class SecretBox:
    """The installation's keys; the first one encrypts."""

    keys: tuple[bytes, ...]
    source: str  # "DSGEN_SECRET_KEY" or the key file's path: where to look when a secret cannot be read

    def _fernet(self) -> MultiFernet:
        """Imported here: most processes never touch a secret."""
        from cryptography.fernet import Fernet, MultiFernet

        try:
            return MultiFernet([Fernet(k) for k in self.keys])
        except (ValueError, TypeError):
            raise SecretKeyError(f"the secret key from {self.source} is not a Fernet key (32 url-safe base64 "
                                 "bytes; see `dsgen secrets --help`)") from None

    def seal(self, plain: str) -> str:
        return PREFIX + self._fernet().encrypt(plain.encode()).decode()

    def open(self, stored: str, what: str = "a secret") -> str:
        """The plain secret; a legacy plain-text value is returned as it is (it is sealed on the next start)."""
        if not is_sealed(stored):
            return stored
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet().decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            hint = f"put that key back (or after the current one in {KEY_ENV}), or save it again"
            raise SecretKeyError(f"{what} was encrypted with another key than the one from {self.source}: "
                                 f"{hint}") from None

    def reseal(self, stored: str) -> str:
        """Encrypted with the first key (a plain value is sealed, a sealed one re-encrypted)."""
        if not is_sealed(stored):
            return self.seal(stored)
        from cryptography.fernet import InvalidToken

        try:
            return PREFIX + self._fernet().rotate(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(f"a stored secret cannot be decrypted with the keys from {self.source}: rotation "
                                 "stopped, nothing was changed") from None


def _keys_of(text: str) -> tuple[bytes, ...]:
    return tuple(k.strip().encode() for k in text.replace(",", "\n").splitlines() if k.strip())


def load_box(settings: Settings, create: bool = True) -> SecretBox:
    """The box of this installation: the setting if given, else the key file (created 0600 if missing)."""
    if os.environ.get(KEY_ENV, "").strip():
        return SecretBox(_keys_of(os.environ[KEY_ENV]), KEY_ENV)
    path = key_file(settings)
    if not path.exists():
        if not create:
            raise SecretKeyError(f"no secret key: neither {KEY_ENV} nor {path} exists")
        _create_key_file(path)
    return SecretBox(_read_keys(path), str(path))


def _create_key_file(path: Path) -> None:
    """Write a new key next to the catalog; processes starting together all end up with the same one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_private(tmp, [new_key()])
    try:
        os.link(tmp, path)  # atomic and complete: fails if another process was first
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: create exclusively, readers wait for the content
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as f:
            f.write(tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)


def _read_keys(path: Path) -> tuple[bytes, ...]:
    """The keys of the file; a file another process has just created may still be empty for a moment."""
    for _ in range(50):
        keys = _keys_of(path.read_text())
        if keys:
            return keys
        time.sleep(0.02)
    raise SecretKeyError(f"the secret key file {path} is empty")


def _write_private(path: Path, keys: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(keys) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)


def replace_key_file(path: Path, keys: list[bytes]) -> None:
    """Atomically put `keys` (first encrypts) into the key file, mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_private(tmp, keys)
    os.replace(tmp, path)

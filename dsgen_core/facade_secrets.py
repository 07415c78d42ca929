"""The facade's secret-key side (site admins): where the key comes from, and rotating it on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dsgen_core import permissions
from dsgen_core.cvat_sync import secret_store
from dsgen_core.users import Actor

if TYPE_CHECKING:
    from dsgen_core.app import App


class SecretsFacade:
    """Mixin for Dsgen: needs `self.app`."""

    app: App

    def secret_key_status(self, actor: Actor) -> secret_store.SecretKeyStatus:
        permissions.require_admin(actor)
        return secret_store.status(self.app)

    def rotate_secret_key(self, actor: Actor) -> int:
        """Re-encrypt every stored secret with a new key (see secret_store.rotate); returns how many."""
        permissions.require_admin(actor)
        return secret_store.rotate(self.app, actor)

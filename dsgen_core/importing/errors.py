"""The one exception of reading an import source; the validation report shows its message as `bad_source`."""

from __future__ import annotations


class SourceError(ValueError):
    """The path given cannot be imported; the message says what and where (the user's names, not ours)."""

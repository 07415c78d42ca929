"""The query language's shared vocabulary: AST nodes and the one error type.

Nodes are frozen dataclasses so a parsed query can be cached, compared and hashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as Kind

from dsgen_core.errors import InvalidRequest

COMPARISONS = (":", "=", "!=", ">", ">=", "<", "<=")
EQUALITY = (":", "=", "!=")


class QueryError(InvalidRequest, ValueError):
    """A query the user must fix: where (0-based char offset) and what was expected there."""

    def __init__(self, message: str, position: int, expected: str, hint: str = "") -> None:
        self.message = message
        self.position = position
        self.expected = expected
        self.hint = hint
        text = f"at {position}: {message} — expected {expected}"
        super().__init__(f"{text} ({hint})" if hint else text)


@dataclass(frozen=True)
class Literal:
    """A value as typed: quoted text is always a string; bare words may be numbers or booleans."""

    kind: Kind["string", "number", "bool"]
    value: str | float | int | bool
    raw: str
    pos: int
    quoted: bool = False


@dataclass(frozen=True)
class Range:
    """`lo..hi`, inclusive; one side may be open (None)."""

    lo: float | int | None
    hi: float | int | None
    raw: str
    pos: int


Value = Literal | Range


@dataclass(frozen=True)
class Count:
    """A trailing count comparison, as in `category:person>=3`."""

    op: str
    value: Literal
    pos: int


@dataclass(frozen=True)
class MatchAll:
    """The empty query."""

    pos: int = 0


@dataclass(frozen=True)
class Term:
    """`field op value [count]`; `field` is as typed, the compiler resolves it (case-insensitively)."""

    field: str
    op: str
    value: Value
    pos: int
    op_pos: int
    count: Count | None = None


@dataclass(frozen=True)
class AnnGroup:
    """`ann:( … )`: every condition inside must hold on the same annotation."""

    body: Node
    pos: int
    count: Count | None = None


@dataclass(frozen=True)
class Not:
    item: Node
    pos: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]
    pos: int


Node = MatchAll | Term | AnnGroup | Not | And | Or

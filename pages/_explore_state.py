"""Pure helpers of the Explore page: DSL terms for facet clicks, selections in the URL, typed values.

No Streamlit here, so they are tested directly (tests/test_explore_state.py).
"""

from __future__ import annotations

import re

from dsgen_core.curation.values import MetaValue

_BARE = re.compile(r"^[^\s()\"<>=!:]+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
MAX_URL_IDS = 500  # larger explicit selections stay in the session only (the URL would get too long)


def quote_value(value: str) -> str:
    """A DSL text literal: bare when it lexes as one word that is not a number/bool/range, else quoted."""
    if value and _BARE.match(value) and not _NUMBER.match(value) and value.lower() not in ("true", "false") \
            and ".." not in value and not value.startswith("-"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: MetaValue) -> str:
    """A typed metadata value as the DSL literal that compares on the same column."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(int(value)) if float(value).is_integer() else repr(float(value))
    return quote_value(str(value))


def add_term(query: str, term: str) -> str:
    """AND a term to a query (once); a query with a top-level OR is parenthesized first."""
    q = query.strip()
    if not q:
        return term
    if term in q.split():
        return q
    if re.search(r"\bOR\b", q, flags=re.IGNORECASE):
        q = f"({q})"
    return f"{q} {term}"


def encode_ids(ids: set[int] | list[int]) -> str:
    """Sorted ids as ranges: `1-5,8,10-12`."""
    out: list[str] = []
    items = sorted({int(i) for i in ids})
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def decode_ids(text: str, limit: int = 100_000) -> set[int]:
    """The inverse of encode_ids; bad parts are skipped (a hand-edited link must not crash the page)."""
    ids: set[int] = set()
    for part in (text or "").split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            continue
        if 0 <= a <= b and b - a < limit - len(ids):
            ids.update(range(a, b + 1))
    return ids


def parse_value(text: str) -> MetaValue:
    """What a person typed into a value cell: true/false → bool, a number → int/float, else text."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if _NUMBER.match(t):
        f = float(t)
        return int(f) if f.is_integer() and abs(f) < 2**53 and "." not in t and "e" not in t.lower() else f
    return text


def caret_line(query: str, position: int) -> str:
    """The query with a caret under the error position (clamped to the end)."""
    pos = max(0, min(int(position), len(query)))
    return f"{query}\n{' ' * pos}^"

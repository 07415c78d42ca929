"""Tag names, metadata keys and typed metadata values: validation and the one typing rule."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from dsgen_core.errors import InvalidRequest

ValueType = Literal["string", "number", "boolean"]
MetaValue = str | float | int | bool
# Keys are reachable in the DSL as metadata.<key>, so they avoid the characters that end a field.
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,99}$")
MAX_TAG = 200
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Typed:
    """A metadata value as stored: its type and the one column that holds it."""

    type: ValueType
    str_: str | None = None
    num: float | None = None
    bool_: bool | None = None

    @property
    def value(self) -> MetaValue:
        if self.type == "number":
            n = self.num
            return int(n) if n is not None and n.is_integer() and abs(n) < 2**53 else n  # type: ignore[return-value]
        return self.bool_ if self.type == "boolean" else self.str_  # type: ignore[return-value]

    def text(self) -> str:
        """The value as CSV text that reads back to the same value."""
        v = self.value
        return ("true" if v else "false") if isinstance(v, bool) else str(v)


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag.strip():
        raise InvalidRequest(f"tag {tag!r}: give a non-empty text")
    tag = tag.strip()
    if len(tag) > MAX_TAG or any(ord(c) < 32 for c in tag):
        raise InvalidRequest(f"tag {tag[:40]!r}: at most {MAX_TAG} characters, no control characters")
    return tag


def check_key(key: object) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InvalidRequest(
            f"metadata key {key!r}: use 1–100 letters, digits, '_', '-', '.' or '/', starting with a letter, "
            "digit or '_' (it is searched as metadata.<key>)"
        )
    return key


def typed(value: object, where: str = "") -> Typed:
    """Python bool → boolean, int/float → number, str → string; anything else is refused."""
    at = f" ({where})" if where else ""
    if isinstance(value, bool):
        return Typed("boolean", bool_=value)
    if isinstance(value, int | float):
        f = float(value)
        if not math.isfinite(f):
            raise InvalidRequest(f"metadata value {value!r}{at}: numbers must be finite")
        return Typed("number", num=f)
    if isinstance(value, str):
        if len(value) > 10_000:
            raise InvalidRequest(f"metadata value{at}: at most 10,000 characters")
        return Typed("string", str_=value)
    raise InvalidRequest(f"metadata value {value!r}{at}: expected text, a number or true/false")


def infer_column(texts: list[str]) -> ValueType:
    """The type of one key's values read from text (CSV): all numbers → number, all true/false →
    boolean, else string — so one key never mixes types within a file."""
    if texts and all(NUMBER_RE.match(t.strip()) for t in texts):
        return "number"
    if texts and all(t.strip().lower() in ("true", "false") for t in texts):
        return "boolean"
    return "string"


def from_text(text: str, type_: ValueType, where: str = "") -> Typed:
    if type_ == "number":
        try:
            return typed(float(text.strip()), where)
        except ValueError:
            raise InvalidRequest(f"{where}: {text!r} is not a number") from None
    if type_ == "boolean":
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise InvalidRequest(f"{where}: {text!r} is not true or false")
        return Typed("boolean", bool_=word == "true")
    return typed(text, where)

"""Safe XML parsing (defusedxml: no entities, no DTD tricks) and the small text helpers both XML formats share."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring, parse

__all__ = ["XmlError", "attr", "escape", "num", "parse_file", "parse_text", "quoteattr", "span", "typed_value",
           "value_text"]


_INT = re.compile(r"-?(0|[1-9][0-9]{0,15})")


class XmlError(ValueError):
    """A file that does not parse as (safe) XML; the message says which file and where."""


def parse_file(path: Path) -> Element:
    try:
        return parse(str(path)).getroot()
    except ParseError as exc:
        raise XmlError(f"{path.name}: {exc}") from exc
    except DefusedXmlException as exc:
        raise XmlError(f"{path.name}: refused unsafe XML ({type(exc).__name__})") from exc


def parse_text(text: str | bytes, where: str) -> Element:
    try:
        return fromstring(text)
    except ParseError as exc:
        raise XmlError(f"{where}: {exc}") from exc
    except DefusedXmlException as exc:
        raise XmlError(f"{where}: refused unsafe XML ({type(exc).__name__})") from exc


def typed_value(text: str | None) -> Any:
    """CVAT's typing of attribute text: true/false become booleans, numbers become numbers, but only
    when the text is the number's canonical form (so "007" or "2.50" stay text and nothing changes)."""
    if text is None:
        return ""
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    try:
        f = float(text)
    except ValueError:
        return text
    return f if repr(f) == text else text


def value_text(value: Any) -> str:
    """The inverse of `typed_value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def num(value: float) -> str:
    """A coordinate as the shortest text that reads back to the same double (`135.0`, `970.3649`)."""
    return repr(float(value))


def span(lo: float, hi: float) -> float:
    """hi − lo without the float noise of the subtraction (120.08000000000004 → 120.08): corner-based
    formats store x + w, and no box needs more than nine decimals of a pixel."""
    return round(hi - lo, 9)


def attr(el: Element, name: str, default: str | None = None) -> str | None:
    return el.get(name, default)

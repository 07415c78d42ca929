"""Split query text into tokens, keeping each token's character offset for error messages.

The lexer is mode-aware: right after a comparison operator it reads a *value*, where `-`
starts a negative number and `:` may appear (`metadata.time:12:30`), instead of a field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dsgen_core.query.ast import QueryError

TokenKind = Literal["LPAREN", "RPAREN", "NEG", "OP", "WORD", "STRING", "EOF"]
TWO_CHAR_OPS = (">=", "<=", "!=")
ONE_CHAR_OPS = (":", "=", ">", "<")
# Characters that end a bare word; `!` only ends one when it starts `!=`.
VALUE_STOP = set('()"<>=')
FIELD_STOP = VALUE_STOP | {":"}


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # the decoded text (quotes and escapes removed for STRING)
    pos: int
    quoted: bool = False


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with one EOF token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            tokens.append(Token("EOF", "", n))
            return tokens
        value_mode = bool(tokens) and tokens[-1].kind == "OP"
        ch = text[i]
        op = _op_at(text, i)
        if ch in "()":
            tokens.append(Token("LPAREN" if ch == "(" else "RPAREN", ch, i))
            i += 1
        elif ch == '"':
            token, i = _read_string(text, i)
            tokens.append(token)
        elif op:
            tokens.append(Token("OP", op, i))
            i += len(op)
        elif ch == "-" and not value_mode:
            tokens.append(Token("NEG", ch, i))
            i += 1
        else:
            token, i = _read_word(text, i, VALUE_STOP if value_mode else FIELD_STOP)
            tokens.append(token)


def _op_at(text: str, i: int) -> str:
    """The comparison operator starting at `i`, or ''."""
    if text[i : i + 2] in TWO_CHAR_OPS:
        return text[i : i + 2]
    return text[i] if text[i] in ONE_CHAR_OPS else ""


def _read_word(text: str, start: int, stop: set[str]) -> tuple[Token, int]:
    i = start
    while i < len(text) and not text[i].isspace() and text[i] not in stop and text[i : i + 2] != "!=":
        i += 1
    return Token("WORD", text[start:i], start), i


def _read_string(text: str, start: int) -> tuple[Token, int]:
    """A double-quoted string; `\\"` and `\\\\` are escapes, any other backslash is literal."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return Token("STRING", "".join(out), start, quoted=True), i + 1
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise QueryError("unclosed quote", start, "a closing '\"'")

"""Recursive-descent parser: tokens to AST, purely syntactic (fields are resolved by the compiler).

Grammar (keywords case-insensitive; precedence NOT > AND > OR):

    query    := [or_expr] EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*           -- juxtaposition is AND
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or_expr ")" | "ann" ":" "(" or_expr ")" [count] | FIELD OP value [count]
    count    := OP NUMBER                         -- category:person>=3
    value    := WORD | "quoted string"            -- WORD may be 12, -1.5, true, 640..1280
"""

from __future__ import annotations

import math
import re

from dsgen_core.query.ast import (
    And,
    AnnGroup,
    Count,
    Literal,
    MatchAll,
    Node,
    Not,
    Or,
    QueryError,
    Range,
    Term,
    Value,
)
from dsgen_core.query.lexer import Token, tokenize

MAX_LENGTH = 10_000
MAX_DEPTH = 64
KEYWORDS = ("AND", "OR", "NOT")
NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
NUMBER_RE = re.compile(NUMBER)
INT_RE = re.compile(r"-?\d+")
RANGE_RE = re.compile(rf"({NUMBER})?\.\.({NUMBER})?")
INT64 = 2**63
OPS_EXPECTED = "':' or a comparison (=, !=, >, >=, <, <=)"
TERM_EXPECTED = "a term such as tag:car, NOT, '-' or '('"


def parse(text: str) -> Node:
    """Parse query text; empty or whitespace-only text gives a match-all node."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"query is longer than {MAX_LENGTH} characters", MAX_LENGTH, "a shorter query")
    return _Parser(tokenize(text)).query()


def parse_number(raw: str, pos: int) -> int | float | None:
    """The number a bare word spells, or None; ints beyond BIGINT become floats."""
    if not NUMBER_RE.fullmatch(raw):
        return None
    if INT_RE.fullmatch(raw):
        value = int(raw)
        if -INT64 <= value < INT64:
            return value
    try:
        number = float(raw)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise QueryError(f"number {raw[:20]!r} is out of range", pos, "a finite number")
    return number


def make_value(token: Token) -> Value:
    """Type a value token: quoted → string; bare → range, number, boolean or string."""
    raw, pos = token.text, token.pos
    if token.quoted:
        return Literal("string", raw, raw, pos, quoted=True)
    match = RANGE_RE.fullmatch(raw)
    if match and (match.group(1) or match.group(2)):
        lo = parse_number(match.group(1), pos) if match.group(1) else None
        hi = parse_number(match.group(2), pos) if match.group(2) else None
        return Range(lo, hi, raw, pos)
    number = parse_number(raw, pos)
    if number is not None:
        return Literal("number", number, raw, pos)
    if raw.lower() in ("true", "false"):
        return Literal("bool", raw.lower() == "true", raw, pos)
    return Literal("string", raw, raw, pos)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers ----------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.i += 1
        return token

    def keyword(self) -> str:
        """'AND'/'OR'/'NOT' when the next token is that keyword (not a field named like one), else ''."""
        token = self.peek()
        if token.kind == "WORD" and token.text.upper() in KEYWORDS and self.peek(1).kind != "OP":
            return token.text.upper()
        return ""

    def starts_term(self) -> bool:
        return self.peek().kind not in ("RPAREN", "EOF") and self.keyword() not in ("AND", "OR")

    # -- grammar ----------------------------------------------------------------------------
    def query(self) -> Node:
        if self.peek().kind == "EOF":
            return MatchAll(self.peek().pos)
        node = self.or_expr()
        token = self.peek()
        if token.kind == "RPAREN":
            raise QueryError("unmatched ')'", token.pos, "a term, AND, OR or the end of the query")
        if token.kind != "EOF":  # pragma: no cover - or_expr consumes everything else
            raise QueryError(f"unexpected {token.text!r}", token.pos, "the end of the query")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.keyword() == "OR":
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items), _pos(items[0]))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while True:
            if self.keyword() == "AND":
                self.advance()
            elif not self.starts_term():
                break
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items), _pos(items[0]))

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == "NEG" or self.keyword() == "NOT":
            self.advance()
            with _Nesting(self, token):
                return Not(self.unary(), token.pos)
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token.kind == "LPAREN":
            self.advance()
            with _Nesting(self, token):
                node = self.group_body(token, "a term inside '( )'")
            return node
        if token.kind == "WORD" and not self.keyword():
            return self.term()
        if token.kind == "EOF":
            raise QueryError("the query ends too early", token.pos, TERM_EXPECTED)
        if token.kind == "RPAREN" and self.depth == 0:
            raise QueryError("unmatched ')'", token.pos, TERM_EXPECTED)
        found = token.text.upper() if token.kind == "WORD" else repr(token.text)
        raise QueryError(f"unexpected {found}", token.pos, TERM_EXPECTED)

    def group_body(self, opener: Token, expected: str) -> Node:
        """`or_expr ")"` after an opening parenthesis; `( )` is an error."""
        if self.peek().kind == "RPAREN":
            raise QueryError("empty parentheses", self.peek().pos, expected)
        node = self.or_expr()
        if self.peek().kind != "RPAREN":
            raise QueryError(f"unclosed '(' opened at {opener.pos}", self.peek().pos, "')'")
        self.advance()
        return node

    def term(self) -> Node:
        field = self.advance()
        op = self.peek()
        if op.kind != "OP":
            raise QueryError(
                f"bare word {field.text!r} is not a condition",
                field.pos,
                f"field:value (e.g. tag:{field.text})",
            )
        self.advance()
        if field.text.lower() == "ann" and op.text == ":" and self.peek().kind == "LPAREN":
            opener = self.advance()
            with _Nesting(self, opener):
                body = self.group_body(
                    opener, "an annotation condition inside ann:( … ), e.g. ann:(category:car)"
                )
            return AnnGroup(body, field.pos, self.count())
        value = self.peek()
        if value.kind not in ("WORD", "STRING"):
            raise QueryError(
                f"missing value after '{field.text}{op.text}'",
                value.pos,
                'a value (word, number or "quoted text")',
            )
        self.advance()
        return Term(field.text, op.text, make_value(value), field.pos, op.pos, self.count())

    def count(self) -> Count | None:
        """An optional trailing `>=3`-style count comparison."""
        op = self.peek()
        if op.kind != "OP":
            return None
        self.advance()
        value = self.peek()
        literal = make_value(value) if value.kind in ("WORD", "STRING") else None
        if not isinstance(literal, Literal) or literal.kind != "number":
            raise QueryError(
                f"a count comparison needs a number after '{op.text}'", value.pos, "a number, e.g. >=3"
            )
        self.advance()
        return Count("=" if op.text == ":" else op.text, literal, op.pos)


class _Nesting:
    """Bound the recursion depth so hostile input gets a QueryError, not a RecursionError."""

    def __init__(self, parser: _Parser, token: Token) -> None:
        self.parser, self.token = parser, token

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > MAX_DEPTH:
            raise QueryError(f"nesting deeper than {MAX_DEPTH} levels", self.token.pos, "a flatter query")

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


def _pos(node: Node) -> int:
    return node.pos

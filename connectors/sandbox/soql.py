"""A small SOQL parser: the subset connectors send, with Salesforce's error codes.

Tokenizer plus recursive descent. It yields a plain AST; ``soql_eval`` types it against the
org's schema and compiles it into a predicate, so a query over 100k rows is filtered once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


class SoqlError(Exception):
    """A query the server refuses; ``code`` is the Salesforce errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![T\d]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "GROUP",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class Token:
    kind: str  # datetime, date, number, string, ident, keyword, op, punct, end
    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, datetime, date, boolean, null
    value: Any
    raw: str = ""  # the string body as written, kept for LIKE's \_ and \%


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str  # = != < <= > >= IN NOT IN LIKE
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND / OR
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class OrderItem:
    path: tuple[str, ...]
    desc: bool
    nulls_first: bool


@dataclass
class Query:
    sobject: str
    fields: list[tuple[str, ...]] = field(default_factory=list)
    count: str | None = None  # "" for COUNT(), a field name for COUNT(Field)
    where: Any = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            bad = text[pos:pos + 10]
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{bad}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            word = m.group()
            if kind == "ident" and word.upper() in KEYWORDS:
                tokens.append(Token("keyword", word.upper(), pos))
            else:
                tokens.append(Token(kind, word, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def unescape(body: str) -> str:
    """Decode a string literal's backslash escapes (``\\'``, ``\\n``, ``\\\\`` ...)."""
    out: list[str] = []
    chars = iter(body)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(_ESCAPES.get(nxt, nxt if nxt in "'\"\\_%" else "\\" + nxt))
        else:
            out.append(ch)
    return "".join(out)


def like_regex(raw: str) -> re.Pattern[str]:
    """SOQL LIKE as a case-insensitive full-match regex; ``\\_``/``\\%`` stay literal."""
    parts: list[str] = []
    chars = iter(raw)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            parts.append(re.escape(_ESCAPES.get(nxt, nxt)))
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self) -> SoqlError:
        t = self.tok
        shown = t.text or "<end of query>"
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{shown}' at position {t.pos}")

    def take(self, kind: str, text: str | None = None) -> Token:
        t = self.tok
        if t.kind != kind or (text is not None and t.text != text):
            raise self.fail()
        self.i += 1
        return t

    def accept(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        if t.kind == kind and (text is None or t.text == text):
            self.i += 1
            return True
        return False

    def path(self) -> tuple[str, ...]:
        return tuple(self.take("ident").text.split("."))

    def query(self) -> Query:
        self.take("keyword", "SELECT")
        fields: list[tuple[str, ...]] = []
        count: str | None = None
        if self.tok.kind == "ident" and self.tok.text.upper() == "COUNT":
            self.i += 1
            self.take("punct", "(")
            count = "" if self.tok.text == ")" else ".".join(self.path())
            self.take("punct", ")")
        else:
            fields.append(self.path())
            while self.accept("punct", ","):
                fields.append(self.path())
        self.take("keyword", "FROM")
        q = Query(sobject=self.take("ident").text, fields=fields, count=count)
        if self.accept("keyword", "WHERE"):
            q.where = self.condition()
        if self.accept("keyword", "ORDER"):
            self.take("keyword", "BY")
            q.order.append(self.order_item())
            while self.accept("punct", ","):
                q.order.append(self.order_item())
        if self.accept("keyword", "LIMIT"):
            q.limit = self.integer()
        if self.accept("keyword", "OFFSET"):
            q.offset = self.integer()
        if self.tok.kind != "end":
            raise self.fail()
        return q

    def integer(self) -> int:
        t = self.take("number")
        if not t.text.isdigit():
            raise SoqlError("MALFORMED_QUERY", f"expected a non-negative integer, not {t.text}")
        return int(t.text)

    def order_item(self) -> OrderItem:
        path = self.path()
        desc = self.accept("keyword", "DESC")
        if not desc:
            self.accept("keyword", "ASC")
        nulls_first = not desc
        if self.accept("keyword", "NULLS"):
            if self.accept("keyword", "FIRST"):
                nulls_first = True
            else:
                self.take("keyword", "LAST")
                nulls_first = False
        return OrderItem(path, desc, nulls_first)

    def condition(self) -> Any:
        items = [self.conjunction()]
        while self.accept("keyword", "OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def conjunction(self) -> Any:
        items = [self.negation()]
        while self.accept("keyword", "AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def negation(self) -> Any:
        if self.accept("keyword", "NOT"):
            return Not(self.negation())
        if self.accept("punct", "("):
            inner = self.condition()
            self.take("punct", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.path()
        if self.tok.kind == "op":
            op = self.take("op").text
            return Comparison(path, "!=" if op == "<>" else op, self.literal())
        if self.accept("keyword", "LIKE"):
            return Comparison(path, "LIKE", self.literal())
        negated = self.accept("keyword", "NOT")
        self.take("keyword", "IN")
        self.take("punct", "(")
        values = [self.literal()]
        while self.accept("punct", ","):
            values.append(self.literal())
        self.take("punct", ")")
        return Comparison(path, "NOT IN" if negated else "IN", tuple(values))

    def literal(self) -> Literal:
        t = self.tok
        self.i += 1
        if t.kind == "string":
            body = t.text[1:-1]
            return Literal("string", unescape(body), body)
        if t.kind == "number":
            return Literal("number", float(t.text) if "." in t.text else int(t.text))
        if t.kind == "datetime":
            try:
                return Literal("datetime", datetime.fromisoformat(t.text))
            except ValueError as exc:
                raise SoqlError("MALFORMED_QUERY", f"invalid datetime: {t.text}") from exc
        if t.kind == "date":
            try:
                return Literal("date", date.fromisoformat(t.text))
            except ValueError as exc:
                raise SoqlError("MALFORMED_QUERY", f"invalid date: {t.text}") from exc
        if t.kind == "keyword" and t.text in ("TRUE", "FALSE"):
            return Literal("boolean", t.text == "TRUE")
        if t.kind == "keyword" and t.text == "NULL":
            return Literal("null", None)
        self.i -= 1
        raise self.fail()


def parse(text: str) -> Query:
    """Parse a SOQL statement; raise ``SoqlError('MALFORMED_QUERY')`` on bad syntax."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    return _Parser(text).query()

"""Rule conditions: a small recursive-descent parser (never ``eval``) that compiles a
condition such as ``amount > 220 and country in ['FR', 'DE']`` once into closures over the
values passed to a decision.

Comparisons (< <= > >= == !=), ``in [..]`` and ``not in [..]``, and / or / not, parentheses,
numbers, 'strings', true / false, and field names; a bare field tests its truth.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamsense.errors import ConfigError

Values = Mapping[str, Any]
Predicate = Callable[[Values], bool]

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<string>'[^']*'|"[^"]*")
    |(?P<op><=|>=|==|!=|<|>)
    |(?P<punct>[()\[\],])
    |(?P<word>[A-Za-z_][A-Za-z0-9_.]*)""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def compile_condition(source: str) -> tuple[Predicate, frozenset[str]]:
    """A condition → (predicate over values, the fields it reads)."""
    parser = _Parser(source)
    test = parser.expression()
    parser.expect_end()
    return test, frozenset(parser.fields)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, op, punct, word, keyword, end
    text: str
    at: int  # offset in the source


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Const:
    value: Any


def _tokenize(source: str) -> list[_Token]:
    tokens, at = [], 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            raise _syntax_error(source, at, _unexpected_char(source[at]))
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "word" and text.lower() in _KEYWORDS:
            kind, text = "keyword", text.lower()
        if kind != "space":
            tokens.append(_Token(kind, text, at))
        at = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


def _unexpected_char(char: str) -> str:
    if char in "'\"":
        return "unterminated string"
    if char == "=":
        return "unexpected '=' (compare with ==)"
    return f"unexpected character {char!r}"


def _syntax_error(source: str, at: int, message: str) -> ConfigError:
    return ConfigError(f"{message} at column {at + 1}\n    {source}\n    {' ' * at}^")


class _Parser:
    """Recursive descent, one method per precedence level: or < and < not < comparison."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.at = 0
        self.fields: set[str] = set()

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while self._accept("keyword", "or"):
            parts.append(self.conjunction())
        return functools.reduce(_or, parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self._accept("keyword", "and"):
            parts.append(self.negation())
        return functools.reduce(_and, parts)

    def negation(self) -> Predicate:
        if self._accept("keyword", "not"):
            inner = self.negation()
            return lambda values: not inner(values)
        if self._accept("punct", "("):
            inner = self.expression()
            self._expect("punct", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        token = self._peek()
        if token.kind == "op":
            self.at += 1
            return _compare(left, token.text, self.operand())
        if self._accept("keyword", "in"):
            return _member(left, self.literal_list())
        if token.text == "not" and self._peek(1).text == "in":
            self.at += 2
            inside = _member(left, self.literal_list())
            return lambda values: not inside(values)
        return _truth(left)

    def operand(self) -> _Field | _Const:
        token = self._next()
        if token.kind == "word":
            self.fields.add(token.text)
            return _Field(token.text)
        if token.kind in ("number", "string") or token.text in ("true", "false"):
            return _Const(_literal(token))
        raise self._error(token, "expected a field name, number, string, true or false")

    def literal_list(self) -> frozenset[Any]:
        self._expect("punct", "[")
        items: list[Any] = []
        while not self._accept("punct", "]"):
            if items:
                self._expect("punct", ",")
            item = self.operand()
            if not isinstance(item, _Const):
                raise self._error(self.tokens[self.at - 1], "a list holds literals, not fields")
            items.append(item.value)
        return frozenset(items)

    def expect_end(self) -> None:
        token = self._peek()
        if token.kind != "end":
            raise self._error(token, "expected and / or or the end of the condition")

    def _peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self.at += 1
        return token

    def _accept(self, kind: str, text: str) -> bool:
        token = self._peek()
        if token.kind == kind and token.text == text:
            self.at += 1
            return True
        return False

    def _expect(self, kind: str, text: str) -> None:
        if not self._accept(kind, text):
            raise self._error(self._peek(), f"expected {text!r}")

    def _error(self, token: _Token, message: str) -> ConfigError:
        found = f"'{token.text}'" if token.kind != "end" else "the end"
        return _syntax_error(self.source, token.at, f"{message}, found {found}")


def _literal(token: _Token) -> Any:
    if token.kind == "string":
        return token.text[1:-1]
    if token.kind == "number":
        is_float = any(c in token.text for c in ".eE")
        return float(token.text) if is_float else int(token.text)
    return token.text == "true"


# Closures are specialised for the common shapes (field vs constant) so that a comparison
# costs one Python call rather than three.
def _compare(left: _Field | _Const, op: str, right: _Field | _Const) -> Predicate:
    if isinstance(left, _Const) and isinstance(right, _Field):
        left, op, right = right, _MIRROR[op], left
    compare = _COMPARE[op]
    if isinstance(left, _Field) and isinstance(right, _Const):
        name, constant = left.name, right.value
        return lambda values: compare(values[name], constant)
    if isinstance(left, _Field) and isinstance(right, _Field):
        a, b = left.name, right.name
        return lambda values: compare(values[a], values[b])
    assert isinstance(left, _Const) and isinstance(right, _Const)
    result = bool(compare(left.value, right.value))
    return lambda values: result


def _member(item: _Field | _Const, options: frozenset[Any]) -> Predicate:
    if isinstance(item, _Const):
        result = item.value in options
        return lambda values: result
    name = item.name
    return lambda values: values[name] in options


def _truth(item: _Field | _Const) -> Predicate:
    if isinstance(item, _Const):
        result = bool(item.value)
        return lambda values: result
    name = item.name
    return lambda values: bool(values[name])


def _and(a: Predicate, b: Predicate) -> Predicate:
    return lambda values: a(values) and b(values)


def _or(a: Predicate, b: Predicate) -> Predicate:
    return lambda values: a(values) or b(values)

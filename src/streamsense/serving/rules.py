"""Declarative decision rules, like card-network and Stripe Radar rules: ordered, the first
rule whose condition holds decides, and no match means the default action (allow).

    rules:
      - name: huge_amount
        when: amount > 220
        action: block
      - name: risky_terminal
        when: TERMINAL_ID_RISK_7DAY_WINDOW >= 0.3 and CUSTOMER_ID_NB_TX_1DAY_WINDOW > 3
        action: review
        score: 0.8

Conditions use comparisons (< <= > >= == !=), ``in [..]`` and ``not in [..]``, and / or /
not, parentheses, numbers, 'strings', true / false, and field names looked up in the values
passed to ``decide`` (features and event fields). A bare field tests its truth. They are
parsed by a small recursive-descent parser (never ``eval``) into closures, once, so deciding
costs a few microseconds.
"""

from __future__ import annotations

import functools
import logging
import operator
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError

logger = logging.getLogger(__name__)

Action = Literal["allow", "review", "block"]
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


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The decision: which rule matched (None: none did, this is the default) and its action."""

    rule: str | None
    action: Action
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: str
    test: Predicate
    fields: frozenset[str]
    match: RuleMatch


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One rule as data (a dict or a YAML/JSON entry)."""

    name: str
    when: str
    action: Action
    score: float | None = None
    description: str = ""
    enabled: bool = True


class _RulesFile(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[RuleSpec]
    default: Action = "allow"


class RuleSet:
    """Compiled rules, evaluated in order: the first whose condition holds decides."""

    def __init__(self, rules: Sequence[Rule], default: Action = "allow") -> None:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"rule names must be unique, these repeat: {duplicates}")
        self.rules = tuple(rules)
        self.default = RuleMatch(None, default)
        # Every field some rule reads: lets a pipeline check them against its schema at startup.
        self.fields = frozenset().union(*(r.fields for r in rules))

    @classmethod
    def from_dicts(cls, rules: Sequence[Mapping[str, Any]], default: Action = "allow") -> RuleSet:
        return cls.from_data({"rules": list(rules), "default": default})

    @classmethod
    def from_data(cls, data: Any) -> RuleSet:
        """From decoded YAML/JSON: a list of rules, or {"rules": [...], "default": action}."""
        if isinstance(data, list):
            data = {"rules": data}
        try:
            spec = msgspec.convert(data, _RulesFile)
        except msgspec.ValidationError as error:
            raise ConfigError(f"invalid rules: {error}") from None
        return cls([compile_rule(r) for r in spec.rules if r.enabled], spec.default)

    @classmethod
    def from_file(cls, path: Path | str) -> RuleSet:
        """From a .yaml / .yml or .json file."""
        path = Path(path)
        return cls.from_bytes(_read(path), json=path.suffix == ".json", source=str(path))

    @classmethod
    def from_bytes(cls, text: bytes, *, json: bool = False, source: str = "rules") -> RuleSet:
        try:
            return cls.from_data(msgspec.json.decode(text) if json else msgspec.yaml.decode(text))
        except msgspec.DecodeError as error:
            raise ConfigError(f"{source}: cannot parse: {error}") from None
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    def decide(self, values: Values) -> RuleMatch:
        rule: Rule | None = None
        try:
            for rule in self.rules:
                if rule.test(values):
                    return rule.match
        except KeyError as error:
            raise ConfigError(
                f"rule {_name(rule)} reads field {error.args[0]!r}, not given"
            ) from None
        except TypeError as error:
            raise ConfigError(f"rule {_name(rule)}: {error}") from None
        return self.default

    def __len__(self) -> int:
        return len(self.rules)


def compile_rule(spec: RuleSpec) -> Rule:
    try:
        test, fields = compile_condition(spec.when)
    except ConfigError as error:
        raise ConfigError(f"rule {spec.name!r}: {error}") from None
    match = RuleMatch(spec.name, spec.action, spec.score)
    return Rule(spec.name, spec.when, test, fields, match)


def compile_condition(source: str) -> tuple[Predicate, frozenset[str]]:
    """A condition → (predicate over values, the fields it reads)."""
    parser = _Parser(source)
    test = parser.expression()
    parser.expect_end()
    return test, frozenset(parser.fields)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read rules file {path}: {error}") from None


def _name(rule: Rule | None) -> str:
    return f"{rule.name!r} ({rule.when})" if rule else "?"


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


class ReloadingRuleSet:
    """Rules read from a file and re-read when it changes, without a restart: every
    ``check_every_s`` (by ``clock``) a ``decide`` call compares the file's bytes with the last
    ones seen and, if they differ, compiles them and swaps the rules in. A file that fails to
    read or compile keeps the old rules; ``last_error`` says why, and a warning is logged."""

    def __init__(
        self, path: Path | str, clock: Clock = SYSTEM_CLOCK, check_every_s: float = 1.0
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.check_every_s = check_every_s
        self.last_error: str | None = None
        self.reloads = 0
        self._seen = _read(self.path)
        self._rules = self._compile(self._seen)  # a bad file at startup is an error
        self._next_check = clock.monotonic() + check_every_s
        self._lock = threading.Lock()

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def decide(self, values: Values) -> RuleMatch:
        if self.clock.monotonic() >= self._next_check:
            self.check()
        return self._rules.decide(values)

    def check(self) -> bool:
        """Re-read the file now; True if new rules were swapped in."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread is checking
        try:
            self._next_check = self.clock.monotonic() + self.check_every_s
            return self._reload_if_changed()
        finally:
            self._lock.release()

    def _reload_if_changed(self) -> bool:
        try:
            text = _read(self.path)
            if text == self._seen:
                return False
            self._seen = text  # an invalid file is reported once, not at every check
            rules = self._compile(text)
        except ConfigError as error:
            self._report(str(error))
            return False
        self._rules = rules  # one reference assignment: readers see old or new, never a mix
        self.last_error = None
        self.reloads += 1
        logger.info("reloaded %d rules from %s", len(rules), self.path)
        return True

    def _compile(self, text: bytes) -> RuleSet:
        return RuleSet.from_bytes(text, json=self.path.suffix == ".json", source=str(self.path))

    def _report(self, message: str) -> None:
        if message != self.last_error:
            logger.warning("keeping the previous rules: %s", message)
        self.last_error = message

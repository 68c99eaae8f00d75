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

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError
from streamsense.serving.conditions import Predicate, Values, compile_condition

logger = logging.getLogger(__name__)

Action = Literal["allow", "review", "block"]


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


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read rules file {path}: {error}") from None


def _name(rule: Rule | None) -> str:
    return f"{rule.name!r} ({rule.when})" if rule else "?"


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

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from streamsense.errors import ConfigError
from streamsense.serving import ReloadingRuleSet, RuleMatch, RuleSet, compile_condition
from streamsense.testing import ManualClock

RADAR = [
    {"name": "huge_amount", "when": "amount > 220", "action": "block", "score": 0.99},
    {
        "name": "risky_terminal",
        "when": "TERMINAL_ID_RISK_7DAY_WINDOW >= 0.3 and CUSTOMER_ID_NB_TX_1DAY_WINDOW > 3",
        "action": "review",
    },
    {"name": "any_large", "when": "amount > 100", "action": "review", "score": 0.5},
]
QUIET = {"amount": 50.0, "TERMINAL_ID_RISK_7DAY_WINDOW": 0.0, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 1}


def holds(condition: str, **values: Any) -> bool:
    test, _ = compile_condition(condition)
    return test(values)


def test_first_matching_rule_decides_and_no_match_allows() -> None:
    rules = RuleSet.from_dicts(RADAR)
    assert rules.decide(QUIET) == RuleMatch(None, "allow")
    assert rules.decide({**QUIET, "amount": 150}) == RuleMatch("any_large", "review", 0.5)
    # Both huge_amount and any_large hold: the earlier one wins.
    assert rules.decide({**QUIET, "amount": 300}) == RuleMatch("huge_amount", "block", 0.99)
    risky = {**QUIET, "TERMINAL_ID_RISK_7DAY_WINDOW": 0.3, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 4}
    assert rules.decide(risky) == RuleMatch("risky_terminal", "review", None)
    assert rules.fields == set(QUIET)


def test_a_custom_default_and_disabled_rules() -> None:
    specs = [{**RADAR[0], "enabled": False}, RADAR[2]]
    rules = RuleSet.from_dicts(specs, default="review")
    assert rules.decide({"amount": 300}).rule == "any_large"
    assert rules.decide({"amount": 1}) == RuleMatch(None, "review")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("a < 2", True), ("a <= 1", True), ("a > 1", False), ("a >= 1", True),
        ("a == 1", True), ("a != 1", False), ("2 > a", True), ("a < b", True),
        ("country == 'FR'", True), ('country != "FR"', False),
        ("country in ['FR', 'DE']", True), ("country not in ['FR', 'DE']", False),
        ("a in [1, 2.5, -3]", True), ("a in []", False), ("x >= -1.5e-3", True),
        ("flag", True), ("not flag", False), ("flag == true", True), ("TRUE", True),
        ("a > 5 or b > 1", True), ("a > 5 OR b > 5", False), ("a == 1 and b == 2", True),
        ("not a == 1 and b == 2", False), ("not (a == 1 and b == 3)", True),
        ("a == 1 or b == 9 and a == 7", True), ("(a == 1 or b == 9) and a == 7", False),
        ("not not flag", True), ("event.kind == 'card'", True),
    ],
)  # fmt: skip
def test_operators(condition: str, expected: bool) -> None:
    values = {"a": 1, "b": 2, "x": 0, "country": "FR", "flag": 1, "event.kind": "card"}
    assert holds(condition, **values) is expected


@pytest.mark.parametrize(
    ("condition", "message", "column"),
    [
        ("amount >", "expected a field name, number, string, true or false, found the end", 9),
        ("amount > 220 and", "found the end", 17),
        ("amount = 220", "unexpected '=' (compare with ==)", 8),
        ("country == 'FR", "unterminated string", 12),
        ("(amount > 1", "expected ')', found the end", 12),
        ("amount > 1 2", "expected and / or or the end of the condition, found '2'", 12),
        ("amount $ 3", "unexpected character '$'", 8),
        ("a in [b]", "a list holds literals, not fields", 7),
        ("a in 3", "expected '['", 6),
        ("", "found the end", 1),
    ],
)
def test_syntax_errors_say_where(condition: str, message: str, column: int) -> None:
    with pytest.raises(ConfigError) as error:
        compile_condition(condition)
    text = str(error.value)
    assert message in text and f"at column {column}\n" in text
    assert text.endswith(" " * (column - 1) + "^")


def test_a_bad_rule_is_named() -> None:
    with pytest.raises(ConfigError, match="rule 'oops': unexpected"):
        RuleSet.from_dicts([{"name": "oops", "when": "a => 1", "action": "block"}])
    with pytest.raises(ConfigError, match="action"):
        RuleSet.from_dicts([{"name": "x", "when": "a > 1", "action": "deny"}])
    with pytest.raises(ConfigError, match="unknown field `acton`"):
        RuleSet.from_dicts([{"name": "x", "when": "a > 1", "acton": "block"}])
    with pytest.raises(ConfigError, match="repeat"):
        RuleSet.from_dicts([RADAR[0], RADAR[0]])


def test_a_missing_field_is_named() -> None:
    rules = RuleSet.from_dicts(RADAR)
    with pytest.raises(
        ConfigError, match=r"'risky_terminal' \(.*\) reads field 'CUSTOMER_ID_NB_TX"
    ):
        rules.decide({"amount": 10, "TERMINAL_ID_RISK_7DAY_WINDOW": 0.5})
    with pytest.raises(ConfigError, match="'huge_amount' \\(amount > 220\\)"):
        rules.decide({**QUIET, "amount": None})


def test_rules_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "default: allow\nrules:\n"
        "  - name: huge_amount\n    when: amount > 220\n    action: block\n    score: 1\n"
    )
    assert RuleSet.from_file(path).decide({"amount": 221}) == RuleMatch("huge_amount", "block", 1)
    path.write_text("rules: [unclosed")
    with pytest.raises(ConfigError, match=r"rules\.yaml: cannot parse"):
        RuleSet.from_file(path)


def write_rules(path: Path, threshold: int) -> None:
    """Write aside then rename, as an editor or deploy tool should."""
    temp = path.with_suffix(".tmp")
    temp.write_text(f"- name: big\n  when: amount > {threshold}\n  action: block\n")
    os.replace(temp, path)


def test_hot_reload_follows_the_file(tmp_path: Path) -> None:
    path, clock = tmp_path / "rules.yaml", ManualClock()
    write_rules(path, 100)
    rules = ReloadingRuleSet(path, clock, check_every_s=5)
    assert rules.decide({"amount": 150}).action == "block"
    write_rules(path, 200)
    assert rules.decide({"amount": 150}).action == "block"  # not checked yet
    clock.advance(5_000)
    assert rules.decide({"amount": 150}).action == "allow"
    assert (rules.reloads, rules.last_error) == (1, None)
    clock.advance(5_000)
    assert not rules.check()  # unchanged file: nothing recompiled


def test_an_invalid_reload_keeps_the_old_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "rules.yaml", ManualClock()
    write_rules(path, 100)
    rules = ReloadingRuleSet(path, clock, check_every_s=1)
    path.write_text("- name: big\n  when: amount >> 3\n  action: block\n")
    clock.advance(1_000)
    with caplog.at_level(logging.WARNING, logger="streamsense.serving.rules"):
        assert rules.decide({"amount": 150}).action == "block"
    assert rules.last_error is not None and "column 9" in rules.last_error
    assert "keeping the previous rules" in caplog.text
    path.unlink()
    clock.advance(1_000)
    assert rules.decide({"amount": 150}).action == "block"
    assert "cannot read" in (rules.last_error or "")
    write_rules(path, 200)
    clock.advance(1_000)
    assert rules.decide({"amount": 150}).action == "allow" and rules.last_error is None


def test_a_missing_file_at_startup_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules file"):
        ReloadingRuleSet(tmp_path / "absent.yaml")

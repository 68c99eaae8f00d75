"""Alert rules, the de-duplicating evaluator, and the Page-Hinkley change detector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamsense.errors import ConfigError
from streamsense.monitoring import (
    AlertEvaluator,
    AlertRule,
    Observation,
    PageHinkley,
    WindowResult,
    alerts_jsonl,
    change_observation,
    observations,
    rules_from_config,
)

DAY = 86_400_000
START = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def seen(
    value: float,
    day: int,
    *,
    subject: str = "amount",
    statistic: str = "psi",
    rows: int = 1_000,
    kind: str = "feature_drift",
) -> Observation:
    return Observation(
        kind=kind,
        subject=subject,
        statistic=statistic,
        value=value,
        window_ms=DAY,
        window_end_ms=START + day * DAY,
        rows=rows,
    )


PSI = AlertRule(
    kind="feature_drift",
    statistic="psi",
    threshold=0.2,
    min_rows=500,
    cooldown_ms=3 * DAY,
    severity="critical",
)


def test_a_rule_fires_above_its_threshold_with_enough_rows() -> None:
    alerts = AlertEvaluator([PSI]).evaluate([seen(0.1, 1), seen(0.5, 2, rows=100), seen(0.3, 3)])
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.kind, alert.subject, alert.statistic) == ("feature_drift", "amount", "psi")
    assert (alert.value, alert.threshold, alert.severity) == (0.3, 0.2, "critical")
    assert alert.detected_at == "2026-01-08T00:00:00Z"
    assert alert.detected_at_ms == START + 3 * DAY
    line = json.loads(alerts_jsonl(alerts))
    assert {k: line[k] for k in ("kind", "subject", "detected_at", "statistic", "threshold")} == {
        "kind": "feature_drift",
        "subject": "amount",
        "detected_at": "2026-01-08T00:00:00Z",
        "statistic": "psi",
        "threshold": 0.2,
    }
    assert line["value"] == 0.3


def test_alerts_are_deduplicated_per_kind_and_subject_within_the_cooldown() -> None:
    evaluator = AlertEvaluator(
        [PSI, AlertRule(kind="feature_drift", statistic="ks", threshold=0.1)]
    )
    batch = [seen(0.3, 1), seen(0.4, 1, statistic="ks"), seen(0.3, 1, subject="hour")]
    first = evaluator.evaluate(batch)
    assert sorted(a.subject for a in first) == ["amount", "hour"]
    assert evaluator.evaluate([seen(0.9, 3)]) == []  # 2 days later: still cooling down
    again = evaluator.evaluate([seen(0.9, 4)])  # 3 days later: due again
    assert [a.detected_at_ms for a in again] == [START + 4 * DAY]


def test_rules_select_by_subject_window_and_direction() -> None:
    rule = AlertRule(
        kind="feature_drift",
        subject="channel",
        statistic="chi_square_p",
        threshold=0.01,
        direction="below",
        window_ms=DAY,
    )
    evaluator = AlertEvaluator([rule])
    assert evaluator.evaluate([seen(0.001, 1, subject="amount", statistic="chi_square_p")]) == []
    hourly = Observation(
        kind="feature_drift",
        subject="channel",
        statistic="chi_square_p",
        value=0.0,
        window_ms=3_600_000,
        window_end_ms=START,
        rows=10,
    )
    assert evaluator.evaluate([hourly]) == []
    fired = evaluator.evaluate([seen(0.001, 1, subject="channel", statistic="chi_square_p")])
    assert [a.value for a in fired] == [0.001]
    assert evaluator.evaluate([seen(0.5, 9, subject="channel", statistic="chi_square_p")]) == []


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        AlertRule(kind="feature_drift", statistic="psi", threshold=0.1, cooldown_ms=-1)


def test_window_results_become_observations_by_role() -> None:
    result = WindowResult(
        column="score",
        role="score",
        window_start_ms=START,
        window_end_ms=START + DAY,
        rows=42,
        missing_rate=0.25,
        statistics={"psi": 0.3},
    )
    observed = {(o.kind, o.statistic, o.value, o.window_ms) for o in observations([result])}
    assert observed == {
        ("prediction_drift", "psi", 0.3, DAY),
        ("prediction_drift", "missing_rate", 0.25, DAY),
    }


def error_stream(change_at: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(size) < change_at, 0.1, 0.35)
    return (rng.random(size) < rate).astype(np.float64)


def test_page_hinkley_stays_quiet_on_a_stationary_error_stream() -> None:
    detector = PageHinkley(delta=0.01, threshold=25.0)
    errors = error_stream(change_at=10**9, size=20_000, seed=5)
    assert detector.update_many((e, i) for i, e in enumerate(errors)) == []
    assert detector.samples == 20_000


def test_page_hinkley_catches_a_rise_in_the_error_rate_soon_after_it() -> None:
    detector = PageHinkley(delta=0.01, threshold=25.0)
    errors = error_stream(change_at=5_000, size=8_000, seed=6)
    changes = detector.update_many((e, i) for i, e in enumerate(errors))
    assert changes, "the rise was not detected"
    assert 5_000 < changes[0].event_time_ms < 5_400
    assert changes[0].statistic > 25.0
    assert detector.samples < 8_000 - changes[0].event_time_ms + 1  # restarted after it


def test_page_hinkley_changes_become_performance_alerts() -> None:
    detector = PageHinkley(delta=0.01, threshold=25.0)
    errors = error_stream(change_at=3_000, size=6_000, seed=7)
    changes = detector.update_many((e, START + i * 60_000) for i, e in enumerate(errors))
    rule = AlertRule(kind="performance", statistic="page_hinkley", threshold=25.0)
    alerts = AlertEvaluator([rule]).evaluate(change_observation(c, "errors") for c in changes)
    assert alerts and alerts[0].subject == "errors" and alerts[0].kind == "performance"
    assert alerts[0].detected_at_ms == changes[0].event_time_ms


def test_page_hinkley_refuses_a_non_positive_threshold() -> None:
    with pytest.raises(ConfigError):
        PageHinkley(threshold=0.0)


def test_rules_come_from_configuration_data_and_bad_ones_are_named() -> None:
    config = [
        {"kind": "feature_drift", "statistic": "psi", "threshold": 0.2, "severity": "critical"},
        {"kind": "performance", "subject": "errors", "statistic": "page_hinkley", "threshold": 25},
    ]
    rules = rules_from_config(config)
    assert rules[0] == AlertRule(
        kind="feature_drift", statistic="psi", threshold=0.2, severity="critical"
    )
    assert rules[1].subject == "errors" and rules[1].cooldown_ms == 0
    with pytest.raises(ConfigError, match="severity"):
        rules_from_config([{"kind": "x", "statistic": "psi", "threshold": 1, "severity": "loud"}])
    with pytest.raises(ConfigError, match="windw_ms"):
        rules_from_config([{"kind": "x", "statistic": "psi", "threshold": 1, "windw_ms": 5}])

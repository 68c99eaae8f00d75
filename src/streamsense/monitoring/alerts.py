"""Alert rules and their evaluator.

Monitors of every sort (drift windows, change detectors, performance windows) report
``Observation``s: a statistic's value for a subject over a window of event time. A rule
picks observations by kind, subject, statistic and window size and fires when the value
crosses its threshold on enough rows. The evaluator turns firing observations into
``Alert`` records, at most one per (kind, subject) within the rule's cooldown, measured in
event time so a replay raises the same alerts as the live run did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

import msgspec

from streamsense.errors import ConfigError
from streamsense.features.windows import to_ms
from streamsense.monitoring.drift import WindowResult

Severity = Literal["info", "warning", "critical"]
Direction = Literal["above", "below"]
ANY = "*"


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # feature_drift, prediction_drift, performance, latency, ...
    subject: str  # the feature, score or metric as the app names it
    statistic: str
    value: float
    window_ms: int
    window_end_ms: int
    rows: int


class AlertRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fires when ``statistic`` is above (or below) ``threshold`` on a window of
    ``window_ms`` with at least ``min_rows`` rows. ``subject`` "*" matches every subject of
    the kind; ``window_ms`` 0 matches any window size."""

    kind: str
    subject: str = ANY
    statistic: str
    threshold: float
    direction: Direction = "above"
    window_ms: int = 0
    min_rows: int = 0
    cooldown_ms: int = 0
    severity: Severity = "warning"

    def __post_init__(self) -> None:
        if self.cooldown_ms < 0 or self.min_rows < 0 or self.window_ms < 0:
            raise ConfigError(f"alert rule {self.kind}/{self.statistic}: negative setting")

    def matches(self, seen: Observation) -> bool:
        return (
            seen.kind == self.kind
            and self.subject in (ANY, seen.subject)
            and seen.statistic == self.statistic
            and self.window_ms in (0, seen.window_ms)
        )

    def fires(self, seen: Observation) -> bool:
        if seen.rows < self.min_rows:
            return False
        if self.direction == "above":
            return seen.value > self.threshold
        return seen.value < self.threshold


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    subject: str
    detected_at: str  # ISO 8601 event time of the window end that triggered it
    detected_at_ms: int
    statistic: str
    value: float
    threshold: float
    severity: Severity
    window_ms: int
    rows: int


class AlertEvaluator:
    """Applies rules to observations in event-time order. Cooldowns are per (kind,
    subject): a feature drifting on three statistics at once raises one alert."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        self.rules = list(rules)
        self._last_alert_ms: dict[tuple[str, str], int] = {}

    def evaluate(self, observations: Iterable[Observation]) -> list[Alert]:
        alerts: list[Alert] = []
        for seen in sorted(observations, key=lambda o: o.window_end_ms):
            for rule in self.rules:
                if rule.matches(seen) and rule.fires(seen) and self._due(rule, seen):
                    alerts.append(_alert(rule, seen))
                    self._last_alert_ms[(seen.kind, seen.subject)] = seen.window_end_ms
                    break
        return alerts

    def _due(self, rule: AlertRule, seen: Observation) -> bool:
        last = self._last_alert_ms.get((seen.kind, seen.subject))
        # Never twice for one window end, whatever the cooldown.
        if last is None:
            return True
        return seen.window_end_ms > last and seen.window_end_ms - last >= rule.cooldown_ms


def rules_from_config(items: object) -> list[AlertRule]:
    """Rules from configuration data (a list of mappings, e.g. parsed from streamsense.yaml):
    unknown keys, wrong types and unknown severities are refused, naming the field.
    ``window`` and ``cooldown`` may be given as durations ("1d", "6h")."""
    if isinstance(items, list):
        items = [_durations(item) if isinstance(item, dict) else item for item in items]
    try:
        return msgspec.convert(items, list[AlertRule], strict=True)
    except msgspec.ValidationError as error:
        raise ConfigError(f"alert rules: {error}") from None


def _durations(item: dict[str, object]) -> dict[str, object]:
    converted = dict(item)
    for key in ("window", "cooldown"):
        if key in converted:
            value = converted.pop(key)
            if not isinstance(value, int | str):
                raise ConfigError(
                    f"alert rules: {key} must be a duration such as 1d, got {value!r}"
                )
            converted[f"{key}_ms"] = to_ms(value)
    return converted


def observations(results: Iterable[WindowResult]) -> list[Observation]:
    """Drift window results as observations: a feature column's are ``feature_drift``, a
    score's ``prediction_drift``; the missing rate is observed as well."""
    seen: list[Observation] = []
    for result in results:
        kind = "prediction_drift" if result.role == "score" else "feature_drift"
        values = dict(result.statistics, missing_rate=result.missing_rate)
        for statistic, value in values.items():
            seen.append(
                Observation(
                    kind=kind,
                    subject=result.column,
                    statistic=statistic,
                    value=value,
                    window_ms=result.window_end_ms - result.window_start_ms,
                    window_end_ms=result.window_end_ms,
                    rows=result.rows,
                )
            )
    return seen


def alerts_jsonl(alerts: Iterable[Alert]) -> bytes:
    """One JSON object a line: what an ``--export-alerts`` file holds."""
    return b"".join(msgspec.json.encode(alert) + b"\n" for alert in alerts)


def iso_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat().replace("+00:00", "Z")


def _alert(rule: AlertRule, seen: Observation) -> Alert:
    return Alert(
        kind=seen.kind,
        subject=seen.subject,
        detected_at=iso_time(seen.window_end_ms),
        detected_at_ms=seen.window_end_ms,
        statistic=seen.statistic,
        value=seen.value,
        threshold=rule.threshold,
        severity=rule.severity,
        window_ms=seen.window_ms,
        rows=seen.rows,
    )

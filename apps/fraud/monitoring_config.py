"""The fraud app's monitoring settings (issue #17), read from monitoring.yaml beside this
file: drift windows, performance windows and their action thresholds, Page-Hinkley's
parameters and the alert rules. Missing sections take the defaults below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from streamsense.errors import ConfigError
from streamsense.monitoring import AlertRule, rules_from_config

CONFIG_PATH = Path(__file__).resolve().parent / "monitoring.yaml"
CONFIG_ENV = "STREAMSENSE_FRAUD_MONITORING"  # another settings file, e.g. for a small run


class _PageHinkley(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    delta: float = 0.005
    threshold: float = 50.0
    min_samples: int = 1000


class _Drift(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window: str = "6h"
    allowed_lateness: str = "1m"
    # A reference slot (weekday x hour) thinner than this is replaced by the whole
    # reference: a week of training data has a few dozen payments in a night hour.
    min_slot_rows: int = 5


class _Performance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window: str = "1d"
    thresholds: list[float] = msgspec.field(default_factory=lambda: [0.5, 0.9])
    page_hinkley: _PageHinkley | None = None
    # Also estimate the day's metrics from the scores before the labels come (kind
    # estimated_performance; no rule picks it by default).
    estimate: bool = True


class MonitoringConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    drift: _Drift = msgspec.field(default_factory=_Drift)
    performance: _Performance = msgspec.field(default_factory=_Performance)
    rules: list[dict[str, Any]] = msgspec.field(default_factory=list)

    def alert_rules(self) -> list[AlertRule]:
        return rules_from_config(self.rules)


def load_config(path: Path | None = None) -> MonitoringConfig:
    """The settings in ``path``, else $STREAMSENSE_FRAUD_MONITORING, else monitoring.yaml."""
    path = path or Path(os.environ.get(CONFIG_ENV) or CONFIG_PATH)
    try:
        return msgspec.yaml.decode(path.read_bytes(), type=MonitoringConfig)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError) as error:
        raise ConfigError(f"monitoring config {path}: {error}") from None

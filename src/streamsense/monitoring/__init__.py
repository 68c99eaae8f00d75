"""Model monitoring, generic for every app: reference profiles of a model's inputs and scores,
drift over tumbling event-time windows, change detection on error streams, alert rules."""

from streamsense.monitoring.alerts import (
    Alert,
    AlertEvaluator,
    AlertRule,
    Observation,
    alerts_jsonl,
    observations,
    rules_from_config,
)
from streamsense.monitoring.detectors import Change, PageHinkley, change_observation
from streamsense.monitoring.drift import DriftWindows, WindowResult
from streamsense.monitoring.profile import (
    ColumnProfile,
    ReferenceProfile,
    build_profile,
    profile_table,
)
from streamsense.monitoring.reference import load_reference, save_reference
from streamsense.monitoring.sink import MonitorSink, decision_row

__all__ = [
    "Alert",
    "AlertEvaluator",
    "AlertRule",
    "Change",
    "ColumnProfile",
    "DriftWindows",
    "MonitorSink",
    "Observation",
    "PageHinkley",
    "ReferenceProfile",
    "WindowResult",
    "alerts_jsonl",
    "build_profile",
    "change_observation",
    "decision_row",
    "load_reference",
    "observations",
    "profile_table",
    "rules_from_config",
    "save_reference",
]

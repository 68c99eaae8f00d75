"""The project file (``streamsense.yaml``) and the registry of versioned definitions.

    project: payments
    broker: embedded://.streamsense/broker.db
    online_store: sqlite://.streamsense/online.db
    offline_store: .streamsense/offline
    feature_sets:
      - apps/payments/app.py:FEATURES

``plan`` compares the feature definitions in code with the registry (what was applied last)
and says what is added, changed or removed; ``apply`` records them, bumping the version of
every changed feature. Paths are relative to the project file's folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from streamsense.errors import ConfigError
from streamsense.features.definitions import AnyFeature, Computed, FeatureSet
from streamsense.runtime.loader import import_attribute


class ProjectConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    project: str
    feature_sets: list[str]
    broker: str = "embedded://.streamsense/broker.db"
    online_store: str = "sqlite://.streamsense/online.db"
    offline_store: str = ".streamsense/offline"
    registry: str = ".streamsense/registry.json"


@dataclass(frozen=True)
class Project:
    root: Path
    config: ProjectConfig

    @classmethod
    def load(cls, path: str | Path = "streamsense.yaml") -> Project:
        file = Path(path)
        if not file.exists():
            raise ConfigError(f"no project file at {file} (create streamsense.yaml)")
        try:
            config = msgspec.yaml.decode(file.read_bytes(), type=ProjectConfig)
        except msgspec.ValidationError as error:
            raise ConfigError(f"{file}: {error}") from None
        return cls(file.resolve().parent, config)

    def resolve(self, url: str) -> str:
        """Relative paths, bare or in ``embedded://PATH`` / ``sqlite://PATH`` URLs, are
        relative to the project folder (``sqlite:///abs`` stays absolute)."""
        for prefix in ("embedded://", "sqlite://"):
            if url.startswith(prefix):
                path = url[len(prefix) :]
                return url if Path(path).is_absolute() else prefix + str(self.root / path)
        return url if "://" in url else str(self.root / url)

    def feature_sets(self) -> list[FeatureSet]:
        sets = []
        for spec in self.config.feature_sets:
            path, _, attribute = spec.partition(":")
            target = import_attribute(str(self.root / path), attribute or "FEATURES")
            if not isinstance(target, FeatureSet):
                raise ConfigError(f"{spec} is not a FeatureSet")
            sets.append(target)
        return sets

    @property
    def registry_path(self) -> Path:
        return self.root / self.config.registry


def fingerprint(feature: AnyFeature) -> dict[str, Any]:
    """What defines a feature, as plain data (the registry stores and compares this)."""
    if isinstance(feature, Computed):
        return {
            "kind": "computed",
            "source": feature.source.topic,
            "dtype": feature.dtype,
            "function": f"{feature.fn.__module__}.{feature.fn.__qualname__}",
            "inputs": list(feature.inputs),
        }
    agg, window = feature.aggregation, feature.window
    return {
        "kind": "window",
        "source": feature.source.topic,
        "key": feature.key,
        "aggregation": agg.name,
        "field": agg.field,
        "precision": agg.precision,
        "window": window.describe(),
        "default": feature.default,
        "dtype": feature.output_dtype,
        "ttl_ms": feature.ttl_ms,
    }


def _digest(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Plan:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def load_registry(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else {}


def plan(feature_sets: list[FeatureSet], registry: dict[str, dict[str, Any]]) -> Plan:
    result = Plan()
    current = {f"{fs.name}.{f.name}": fingerprint(f) for fs in feature_sets for f in fs.features}
    for name, definition in sorted(current.items()):
        known = registry.get(name)
        if known is None:
            result.added.append(name)
        elif known["digest"] != _digest(definition):
            result.changed.append(name)
        else:
            result.unchanged.append(name)
    result.removed = sorted(set(registry) - set(current))
    return result


def apply(feature_sets: list[FeatureSet], path: Path) -> Plan:
    """Record the current definitions; a changed feature gets the next version."""
    registry = load_registry(path)
    changes = plan(feature_sets, registry)
    updated: dict[str, dict[str, Any]] = {}
    for fs in feature_sets:
        for feature in fs.features:
            name = f"{fs.name}.{feature.name}"
            definition = fingerprint(feature)
            old = registry.get(name)
            version = 1 if old is None else old["version"] + (old["digest"] != _digest(definition))
            updated[name] = {
                "version": version,
                "digest": _digest(definition),
                "definition": definition,
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(updated, indent=2, sort_keys=True))
    temporary.replace(path)
    return changes

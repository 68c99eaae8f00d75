"""The decision cascade and where the pipeline and `streamsense serve apps/fraud` find what
they need: everything lives in the state dir (online.db, models/).

rules → light model (every payment the rules let through) → heavy model (light scores in
the heavy band). The models in production are ``fraud-light`` and ``fraud-heavy`` in
``<state dir>/models`` (`streamsense fraud train` puts them there); without them the rules
decide alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from features import derived

import streamsense as ss
from streamsense import features as F
from streamsense.errors import StreamsenseError
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.models import LoadedModel
from streamsense.serving.registry import ModelRegistry
from streamsense.serving.rules import RuleSet
from streamsense.serving.service import Serving
from streamsense.store import OnlineStore, open_online_store
from streamsense.store.views import OnlineFeatures

LIGHT, HEAVY = "fraud-light", "fraud-heavy"

# Rules in front: only what is certain. (A rule that blocks on the terminal's 7-day risk,
# tried first, is right about half the time on the handbook data: the models do better.)
RULES = RuleSet.from_dicts(
    [{"name": "amount_over_220", "when": "TX_AMOUNT > 220", "action": "block"}]
)

# Fraud is rare (under 1 %): the light model is confident about most payments, and only the
# ones it finds somewhat suspicious (about a third) go to the heavy model.
CONFIG = CascadeConfig(review_at=0.5, block_at=0.9, heavy_band=(0.002, 1.01))


class FraudCascade(Cascade):
    """The cascade, given the derived features (amount against habits) as well."""

    def decide(
        self,
        event_id: str,
        key: str,
        values: Mapping[str, Any],
        *,
        shed_heavy: bool = False,
        feature_age_ms: int = 0,
    ) -> DecisionRecord:
        full = {**values, **derived(values)}
        return super().decide(
            event_id, key, full, shed_heavy=shed_heavy, feature_age_ms=feature_age_ms
        )


def online_store(state_dir: Path) -> OnlineStore:
    return open_online_store(f"sqlite://{Path(state_dir).resolve() / 'online.db'}")


def attach(stage: F.FeatureStage, state_dir: Path) -> None:
    stage.attach_online(online_store(state_dir))


def registry(state_dir: Path) -> ModelRegistry:
    return ModelRegistry(Path(state_dir) / "models")


def production_model(models: ModelRegistry, name: str) -> LoadedModel | None:
    try:
        model = models.load(name, "production")
    except StreamsenseError:
        return None  # not trained yet: the rules decide alone
    model.predict_proba(np.zeros((1, len(model.features)), np.float32))  # warm up the runtime
    return model


def load_cascade(state_dir: Path | None) -> FraudCascade:
    """The rules and the models in production in ``state_dir`` (rules alone without one)."""
    if state_dir is None:
        return FraudCascade(rules=RULES, config=CONFIG)
    models = registry(state_dir)
    return FraudCascade(
        rules=RULES,
        light=production_model(models, LIGHT),
        heavy=production_model(models, HEAVY),
        config=CONFIG,
    )


def build_serving(
    broker: ss.Broker, state_dir: Path, features: F.FeatureSet, stream: ss.Stream[object]
) -> Serving:
    online = OnlineFeatures(features, online_store(state_dir))
    return Serving(
        name="fraud",
        streams={stream.topic: stream},
        features={stream.topic: online},
        cascade=load_cascade(state_dir),
        broker=broker,
        decisions_topic="fraud.decisions",
        views=online.views_by_name(),
        registry=registry(state_dir),
    )

"""How `streamsense serve apps/fraud` and the pipeline find the online store and models:
everything lives in the state dir (online.db, models/)."""

from __future__ import annotations

from pathlib import Path

import streamsense as ss
from streamsense import features as F
from streamsense.errors import StreamsenseError
from streamsense.serving.cascade import Cascade
from streamsense.serving.models import LoadedModel
from streamsense.serving.registry import ModelRegistry
from streamsense.serving.rules import RuleSet
from streamsense.serving.service import Serving
from streamsense.store import OnlineStore, open_online_store
from streamsense.store.views import OnlineFeatures

# The same rules as the pipeline's `rules` stage, as data (first match wins).
RULES = RuleSet.from_dicts(
    [
        {"name": "amount_over_220", "when": "tx_amount > 220", "action": "block"},
        {
            "name": "terminal_risk_7d",
            "when": "TERMINAL_ID_RISK_7DAY_WINDOW >= 0.3",
            "action": "block",
        },
    ]
)


def online_store(state_dir: Path) -> OnlineStore:
    return open_online_store(f"sqlite://{Path(state_dir).resolve() / 'online.db'}")


def attach(stage: F.FeatureStage, state_dir: Path) -> None:
    stage.attach_online(online_store(state_dir))


def production_model(registry: ModelRegistry, name: str) -> LoadedModel | None:
    try:
        return registry.load(name, "production")
    except StreamsenseError:
        return None  # not trained yet: the rules decide alone


def build_serving(
    broker: ss.Broker, state_dir: Path, features: F.FeatureSet, stream: ss.Stream[object]
) -> Serving:
    online = OnlineFeatures(features, online_store(state_dir))
    registry = ModelRegistry(Path(state_dir) / "models")
    cascade = Cascade(
        rules=RULES,
        light=production_model(registry, "fraud-light"),
        heavy=production_model(registry, "fraud-heavy"),
    )
    return Serving(
        name="fraud",
        streams={stream.topic: stream},
        features={stream.topic: online},
        cascade=cascade,
        broker=broker,
        decisions_topic="fraud.decisions",
        views=online.views_by_name(),
        registry=registry,
    )

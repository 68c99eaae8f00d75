"""The decision cascade and where the pipeline and `streamsense serve apps/fraud` find what
they need: everything lives in the state dir (online.db, models/).

rules (none by default) → light model (every payment the rules let through) → heavy model
(light scores in the heavy band, tuned: tuning.py). The models in production are
``fraud-light`` and ``fraud-heavy`` in ``<state dir>/models`` (`streamsense fraud train`
puts them there); without them every payment is allowed (tier ``rules``, no rule matched).
With $STREAMSENSE_HEAVY_MODEL_URL set (or ``heavy_url``), the heavy tier is a `streamsense
model-server` process at that URL instead, which can be restarted, or fail, apart from the
API: its breaker opens and the light score decides until it is back. The online store is
the one $STREAMSENSE_ONLINE_STORE names, when set: a cluster's workers and API share it
(docs/deployment.md).

When the light model cannot score, the fallback chain decides: stricter rules first, then
the customer's last score (trusted less as it ages), then allow, every such decision marked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import streamsense as ss
from streamsense import features as F
from streamsense.errors import StreamsenseError
from streamsense.resilience.breaker import BreakerConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Candidate, Cascade, CascadeConfig
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.fallbacks import FallbackConfig
from streamsense.serving.models import LoadedModel
from streamsense.serving.registry import ModelRegistry
from streamsense.serving.remote_model import RemoteModel
from streamsense.serving.rules import RuleSet
from streamsense.store import OnlineStore, open_online_store
from streamsense.store.views import OnlineFeatures

from .features import derived
from .tuned_params import load_tuned

LIGHT, HEAVY = "fraud-light", "fraud-heavy"
HEAVY_URL_ENV = "STREAMSENSE_HEAVY_MODEL_URL"
# Workers and API replicas on several hosts share one online store (Redis, say): its URL
# here; unset, the state dir's SQLite file, which only processes on one host can share.
ONLINE_STORE_ENV = "STREAMSENSE_ONLINE_STORE"

# No rules in front by default: the models decide every payment. The one rule that was
# certain on the handbook data, amount over 220 → block, is its generator's own labelling
# rule, which no bank knows (issue #23); a rule that blocks on the terminal's 7-day risk is
# right about half the time there, and the models do better. Operators add their own.
RULES = RuleSet.from_dicts([])

# Fraud is rare (under 1 %): the light model is confident about most payments, and only the
# ones it finds somewhat suspicious go to the heavy model: the band is tuned on the weeks
# before the training week (`streamsense fraud tune`, tuned.json).
# A tier failing half of its last 50 calls, or answering half of them over 100 ms, is skipped
# for 10 s, then probed.
CONFIG = CascadeConfig(
    review_at=0.5,
    block_at=0.9,
    heavy_band=load_tuned().heavy_band,
    breaker=BreakerConfig(
        window_size=50,
        minimum_calls=20,
        slow_call_duration=0.1,
        slow_call_rate_threshold=50.0,
        wait_in_open=10.0,
    ),
)

# Models down: nothing behind the rules, so they review sooner (amounts over 150, terminals
# with known frauds last week); then the customer's last score; then allow.
FALLBACKS = FallbackConfig(
    chain=("rules", "last_prediction", "default"),
    rules=RuleSet.from_dicts(
        [
            {"name": "models_down_amount_over_150", "when": "TX_AMOUNT > 150", "action": "review"},
            {
                "name": "models_down_risky_terminal",
                "when": "TERMINAL_ID_RISK_7DAY_WINDOW > 0.2",
                "action": "review",
            },
        ]
    ),
    default_action="allow",
    default_score=0.0,
)


class FraudCascade(Cascade):
    """The cascade, given the derived features (amount against habits) as well."""

    def decide_batch(
        self, candidates: Sequence[Candidate], *, shed_heavy: bool = False
    ) -> list[DecisionRecord]:
        full = [
            Candidate(c.event_id, c.key, {**c.values, **derived(c.values)}, c.feature_age_ms)
            for c in candidates
        ]
        return super().decide_batch(full, shed_heavy=shed_heavy)


def online_store(state_dir: Path) -> OnlineStore:
    """The store of $STREAMSENSE_ONLINE_STORE (redis://HOST:PORT/DB, ...), else the state
    dir's SQLite file."""
    url = os.environ.get(ONLINE_STORE_ENV) or f"sqlite://{Path(state_dir).resolve() / 'online.db'}"
    return open_online_store(url)


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


def remote_model(models: ModelRegistry, url: str) -> RemoteModel:
    """The heavy model served at ``url``. Its features come from the registry when it holds
    the model, so a worker starts even while the model server is down (the breaker and the
    fallbacks cover the outage); otherwise the server must answer now."""
    try:
        features = models.metadata(HEAVY, "production").features
    except StreamsenseError:
        return RemoteModel(url)
    return RemoteModel(url, name=HEAVY, features=list(features))


def load_cascade(state_dir: Path | None, heavy_url: str | None = None) -> FraudCascade:
    """The rules and the models in production in ``state_dir`` (rules alone without one);
    the heavy model served at ``heavy_url`` ($STREAMSENSE_HEAVY_MODEL_URL) if given."""
    if state_dir is None:
        return FraudCascade(rules=RULES, config=CONFIG, fallbacks=FALLBACKS)
    models = registry(state_dir)
    heavy_url = heavy_url or os.environ.get(HEAVY_URL_ENV) or None
    heavy = remote_model(models, heavy_url) if heavy_url else production_model(models, HEAVY)
    return FraudCascade(
        rules=RULES,
        light=production_model(models, LIGHT),
        heavy=heavy,
        config=CONFIG,
        fallbacks=FALLBACKS,
    )


def build_serving(
    broker: ss.Broker, state_dir: Path, features: F.FeatureSet, stream: ss.Stream[Any]
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

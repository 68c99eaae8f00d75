"""A deciding pipeline for the chaos tests: payments → a decide stage → decision records.

The decide stage runs a ``Cascade``: rules first, then a small real model (scikit-learn
logistic regression exported to ONNX, scored by onnxruntime) behind the cascade's circuit
breaker. The breaker opens within a few slow calls and a fast model closes it within a
couple of seconds; while it is open the rules decide and the record says ``degraded`` with
the reason.

The model call can be made slow from outside, as a chaos test needs: when the file
``$STREAMSENSE_CHAOS_CONTROL/slow`` exists, every model call first sleeps the seconds it
holds on the cascade's clock (``SwitchClock``: the wall clock plus the delays slept so
far). The breaker and the latency budget see those calls take that long, and only those:
what is slow is decided by the switch, never by how loaded the machine is. Topic and group
names start with ``$STREAMSENSE_CHAOS_NAME`` (one per test on a shared broker); the model
is read from ``$STREAMSENSE_CHAOS_MODEL`` (see ``train_model``).

Two dependencies can be moved out of process, as the model-server and Redis scenarios need:

- ``$STREAMSENSE_CHAOS_HEAVY_URL``: a heavy tier, a ``RemoteModel`` of a `streamsense
  model-server` at that URL, scoring every payment the light model scored (heavy band
  [0, 1.01)); while it is down the light score decides, marked ``heavy_unavailable``.
- ``$STREAMSENSE_CHAOS_REDIS_URL``: a feature stage before the decide stage (per-user count
  and sum of amounts over 10 minutes) writing its rows to a Redis online store, and the
  ``serving`` hook of `streamsense serve` deciding on features read from that store through
  a ``FeatureGuard`` (breaker, last-known vector) — see chaos_serving.py.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

import streamsense as ss
from streamsense import features as F
from streamsense.clock import SYSTEM_CLOCK
from streamsense.resilience import BreakerConfig
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.models import FunctionModel, LoadedModel, onnx_scorer
from streamsense.serving.remote_model import RemoteModel
from streamsense.serving.rules import RuleSet
from streamsense.store.redis_online import RedisOnlineStore

if TYPE_CHECKING:  # the API's modules (FastAPI) are not loaded by workers
    from streamsense.serving import Serving

PARTITIONS = 4
FEATURES = ["amount", "risk"]
RULES = RuleSet.from_dicts([{"name": "huge", "when": "amount > 900", "action": "block"}])

# A call over 2 s is slow: a switched one (the chaos test switches 10 s), never a real one,
# which takes microseconds and, on a loaded machine, still far less than that. Half the last 10
# calls slow opens the breaker; after 1 s open, 3 probes decide whether it closes.
BREAKER = BreakerConfig(
    slow_call_duration=2.0,
    slow_call_rate_threshold=50.0,
    window_size=10,
    minimum_calls=10,
    wait_in_open=1.0,
    permitted_calls_in_half_open=3,
)
# The light tier's budget matches the slow-call threshold: a model slower than that marks its
# decision degraded ("light_over_budget") even before the breaker opens.
CONFIG = CascadeConfig(light_budget_ms=2000.0, breaker=BREAKER)
# With a remote heavy tier every light score goes to it: each model decision exercises it.
HEAVY_CONFIG = CascadeConfig(light_budget_ms=2000.0, heavy_band=(0.0, 1.01), breaker=BREAKER)


class Payment(ss.Schema):
    id: str  # unique per event: the chaos tests count decisions by it
    user: str
    ts: int
    amount: float
    risk: float


class SwitchClock:
    """The wall clock plus every delay slept on it: ``sleep`` moves the clock instead of
    waiting, so a switched model call takes exactly its delay as the cascade measures it."""

    def __init__(self) -> None:
        self._slept_s = 0.0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return SYSTEM_CLOCK.now_ms() + int(self._slept_s * 1000)

    def monotonic(self) -> float:
        return SYSTEM_CLOCK.monotonic() + self._slept_s

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._slept_s += max(0.0, seconds)


class SlowSwitch:
    """The chaos tests' control: the delay in ``<control>/slow`` (seconds), if it exists,
    and the clock a slowed call sleeps on (the cascade's)."""

    def __init__(self, control: Path | None) -> None:
        self.path = control / "slow" if control is not None else None
        self.clock = SwitchClock()

    def delay(self) -> float:
        if self.path is None:
            return 0.0
        try:
            return float(self.path.read_text() or 0.0)
        except (FileNotFoundError, ValueError):
            return 0.0  # no switch, or a half-written one: fast


class SwitchedModel(FunctionModel):
    """The ONNX model, slowed down while the switch is on."""

    def __init__(self, artifact: bytes, switch: SlowSwitch) -> None:
        score = onnx_scorer(artifact, len(FEATURES))

        def slowed(X: npt.NDArray[Any]) -> npt.NDArray[Any]:
            switch.clock.sleep(switch.delay())
            return score(X)

        super().__init__(
            slowed, FEATURES, name="chaos-lr", version=1, format="onnx", runtime="onnxruntime"
        )


def train_model(path: Path) -> Path:
    """Fit a logistic regression on synthetic payments (fraud when risky and large) and
    write it as ONNX to ``path``. Deterministic; takes about a second."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = np.column_stack([rng.uniform(0, 1000, 4000), rng.uniform(0, 1, 4000)]).astype(np.float32)
    y = (X[:, 1] + X[:, 0] / 2000 + rng.normal(0, 0.1, len(X)) > 0.9).astype(np.int64)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    onnx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}})
    path.write_bytes(onnx.SerializeToString())
    return path


def payment_stream(name: str) -> ss.Stream[Payment]:
    return ss.Stream(f"{name}.payments", Payment, key="user", time="ts", partitions=PARTITIONS)


def user_features(payments: ss.Stream[Payment]) -> F.FeatureSet:
    """Per user, over 10 minutes of event time (the chaos payments span the last minute)."""
    user = F.FeatureGroup(payments, key="user")
    user.add("n_10m", F.count(), F.rolling("10m"))
    user.add("sum_10m", F.sum("amount"), F.rolling("10m"))
    return F.FeatureSet("chaos_user", user.features)


def online_store(name: str, url: str) -> RedisOnlineStore:
    return RedisOnlineStore(url, prefix=f"{name}:")


def build(
    name: str,
    model_path: Path | None,
    control: Path | None,
    *,
    heavy_url: str | None = None,
    online_url: str | None = None,
) -> tuple[ss.App, ss.Stream[Payment]]:
    payments = payment_stream(name)
    switch = SlowSwitch(control)
    light = SwitchedModel(model_path.read_bytes(), switch) if model_path else None
    # Features given: a worker starts even while the model server is down.
    heavy: LoadedModel | None = (
        RemoteModel(heavy_url, name="heavy", features=FEATURES) if heavy_url else None
    )
    config = HEAVY_CONFIG if heavy is not None else CONFIG
    cascade = Cascade(rules=RULES, light=light, heavy=heavy, config=config, clock=switch.clock)

    def decide(payment: Payment, ctx: ss.Context) -> DecisionRecord:
        return cascade.decide(payment.id, ctx.key, {"amount": payment.amount, "risk": payment.risk})

    def decide_enriched(value: F.Enriched, ctx: ss.Context) -> DecisionRecord:
        record = decide(value.payload, ctx)
        record.features.update(value.features)
        return record

    app = ss.App(name)
    sink = ss.TopicSink(f"{name}.decisions")
    if online_url is None:
        app.flow(payments).stage("decide", decide).sink(sink)
        return app, payments
    stage = F.FeatureStage("features", user_features(payments), feature_log=False)
    stage.attach_online(online_store(name, online_url))
    app.flow(payments).batch(stage).stage("decide", decide_enriched).sink(sink)
    return app, payments


def _path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


app, payments = build(
    os.environ.get("STREAMSENSE_CHAOS_NAME", "chaos"),
    _path("STREAMSENSE_CHAOS_MODEL"),
    _path("STREAMSENSE_CHAOS_CONTROL"),
    heavy_url=os.environ.get("STREAMSENSE_CHAOS_HEAVY_URL") or None,
    online_url=os.environ.get("STREAMSENSE_CHAOS_REDIS_URL") or None,
)


def serving(broker: ss.Broker, state_dir: Path) -> Serving:
    """`streamsense serve tests.apps.chaos_app:application`: decisions on the Redis features."""
    from tests.apps.chaos_serving import build_serving

    return build_serving(broker, app.name, payments)


application = ss.Application(app=app, serving=serving)

"""A deciding app for request/reply tests: per-user windows over clicks → cascade → replies.

Like the fraud app (features, then rules and a light model), small enough to start in
milliseconds. Each decision is written by ``ReplySink`` with the id of the request."""

from __future__ import annotations

import streamsense as ss
from streamsense import features as F
from streamsense.serving.cascade import Cascade
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.models import FunctionModel
from streamsense.serving.request_reply import ReplySink, request_id
from streamsense.serving.rules import RuleSet
from streamsense.testing import ManualClock
from tests.apps.counter import Click

clicks = ss.Stream("dclicks", Click, key="user", time="ts", partitions=2)

user = F.FeatureGroup(clicks, key="user")
user.add("n_10s", F.count(), F.rolling("10s"))
user.add("sum_10s", F.sum("amount"), F.rolling("10s"))
FEATURES = F.FeatureSet("decider", user.features)

CASCADE = Cascade(
    rules=RuleSet.from_dicts([{"name": "big", "when": "amount > 1000", "action": "block"}]),
    light=FunctionModel(lambda X: X[:, 0] / 10, ["n_10s"], name="light", version=1),
    # Model calls take no time on a ManualClock: a busy machine never puts the light tier
    # over its budget, so every decision the tests expect undegraded is.
    clock=ManualClock(),
)


def decide(enriched: F.Enriched, ctx: ss.Context) -> DecisionRecord:
    click: Click = enriched.payload
    values = {"amount": click.amount, **enriched.features}
    record = CASCADE.decide(request_id(ctx.event), ctx.key, values)
    record.features = dict(enriched.features)
    return record


app = ss.App("decider")
app.flow(clicks).batch(F.FeatureStage("features", FEATURES)).stage("decide", decide).sink(
    ReplySink("decider.decisions")
)

"""Model serving: a model registry with safe artifact formats, model adapters, rules, the
decision cascade, and what the APIs serve. Importing it loads no web framework: the HTTP
API is ``streamsense.serving.service`` (FastAPI), the gRPC one ``serving.grpc_service``.

from streamsense import serving

registry = serving.ModelRegistry("models/")
version = registry.register("risk", "model.onnx", "onnx", features=FEATURES)
registry.set_alias("risk", "production", version)
model = registry.load("risk", "production")
p = model.predict_proba(rows)  # (n, len(FEATURES)) → (n,)

rules = serving.ReloadingRuleSet("rules.yaml")
rules.decide({"amount": 250.0, ...})  # RuleMatch(rule="huge_amount", action="block", ...)

heavy = serving.RemoteModel("http://127.0.0.1:8100")  # `streamsense model-server`
fallbacks = serving.FallbackConfig(chain=("rules", "last_prediction", "default"), rules=...)
cascade = serving.Cascade(rules=rules, light=model, config=serving.CascadeConfig(block_at=0.8))
served = serving.Serving("payments", broker, streams, features, cascade, "payments.decisions")
own = serving.Endpoint("GET", "/v1/recommend/{user}", lambda call: serving.Reply.json([...]))
served = serving.Serving("recs", broker, endpoints=[own], on_start=..., ready=...)  # no decisions
app.flow(transactions).stage("decide", decide).sink(serving.ReplySink("payments.decisions"))
decisions = ss.Stream("payments.decisions", serving.Decision, key="key", time="event_time")
app.flow(decisions).sink(serving.WebhookSink(url)).sink(serving.AlertLogSink("alerts.jsonl"))
"""

from __future__ import annotations

from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.conditions import compile_condition
from streamsense.serving.decision import Decision, DecisionRecord
from streamsense.serving.endpoints import Call, Endpoint, Reply
from streamsense.serving.fallbacks import FallbackConfig
from streamsense.serving.headers import DECIDED_BY_API, DECIDED_BY_HEADER, EVENT_ID_HEADER
from streamsense.serving.models import ConstantModel, Format, FunctionModel, LoadedModel
from streamsense.serving.registry import ModelMetadata, ModelRegistry
from streamsense.serving.remote_model import RemoteModel
from streamsense.serving.request_reply import ReplySink
from streamsense.serving.rules import (
    Action,
    ReloadingRuleSet,
    Rule,
    RuleMatch,
    RuleSet,
    RuleSpec,
)
from streamsense.serving.served import Serving
from streamsense.serving.sinks import AlertLogSink, SqlTableSink, TopicActionSink
from streamsense.serving.webhook import WebhookSink

__all__ = [
    "DECIDED_BY_API",
    "DECIDED_BY_HEADER",
    "EVENT_ID_HEADER",
    "Action",
    "AlertLogSink",
    "Call",
    "Cascade",
    "CascadeConfig",
    "ConstantModel",
    "Decision",
    "DecisionRecord",
    "Endpoint",
    "FallbackConfig",
    "Format",
    "FunctionModel",
    "LoadedModel",
    "ModelMetadata",
    "ModelRegistry",
    "ReloadingRuleSet",
    "RemoteModel",
    "Reply",
    "ReplySink",
    "Rule",
    "RuleMatch",
    "RuleSet",
    "RuleSpec",
    "Serving",
    "SqlTableSink",
    "TopicActionSink",
    "WebhookSink",
    "compile_condition",
]

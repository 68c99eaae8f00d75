"""Model serving: a model registry with safe artifact formats, model adapters, and rules.

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
"""

from __future__ import annotations

from streamsense.serving.conditions import compile_condition
from streamsense.serving.fallbacks import FallbackConfig
from streamsense.serving.models import ConstantModel, Format, FunctionModel, LoadedModel
from streamsense.serving.registry import ModelMetadata, ModelRegistry
from streamsense.serving.remote_model import RemoteModel
from streamsense.serving.rules import (
    Action,
    ReloadingRuleSet,
    Rule,
    RuleMatch,
    RuleSet,
    RuleSpec,
)

__all__ = [
    "Action",
    "ConstantModel",
    "FallbackConfig",
    "Format",
    "FunctionModel",
    "LoadedModel",
    "ModelMetadata",
    "ModelRegistry",
    "ReloadingRuleSet",
    "RemoteModel",
    "Rule",
    "RuleMatch",
    "RuleSet",
    "RuleSpec",
    "compile_condition",
]

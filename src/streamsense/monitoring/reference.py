"""A model version's reference profile, kept in the model registry beside its artifact
(``<registry>/<model>/<version>/attached/reference_profile.json``), so monitoring compares
live data with what that very version was trained on."""

from __future__ import annotations

from pathlib import Path

from streamsense.monitoring.profile import ReferenceProfile
from streamsense.serving.registry import ModelRegistry

PROFILE_FILE = "reference_profile.json"


def save_reference(
    registry: ModelRegistry, model: str, version_or_alias: int | str, profile: ReferenceProfile
) -> Path:
    return registry.attach(model, version_or_alias, PROFILE_FILE, profile.to_json())


def load_reference(
    registry: ModelRegistry, model: str, version_or_alias: int | str
) -> ReferenceProfile:
    return ReferenceProfile.from_json(registry.attachment(model, version_or_alias, PROFILE_FILE))

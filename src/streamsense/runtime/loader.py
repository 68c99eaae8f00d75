"""Finds an application from what a user types: ``apps/fraud`` (a folder with app.py), a
Python file, or ``package.module[:attribute]``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from streamsense.errors import ConfigError
from streamsense.runtime.app import App


@dataclass(frozen=True)
class LoadedApp:
    app: App
    module: ModuleType

    def hook(self, name: str) -> Any:
        """An optional function the app module offers (``summary``, ``inputs``...)."""
        return getattr(self.module, name, None)


def load_app(spec: str) -> LoadedApp:
    module, attribute = _import(spec)
    target = getattr(module, attribute, None)
    if target is None and hasattr(module, "create_app"):
        target = module.create_app()
    if not isinstance(target, App):
        raise ConfigError(
            f"{spec!r} defines no streamsense App named {attribute!r} (or create_app())"
        )
    return LoadedApp(target, module)


def import_attribute(path_or_module: str, attribute: str) -> Any:
    """``attribute`` of a Python file or an importable module."""
    module, _ = _import(path_or_module)
    if not hasattr(module, attribute):
        raise ConfigError(f"{path_or_module} has no {attribute!r}")
    return getattr(module, attribute)


def _import(spec: str) -> tuple[ModuleType, str]:
    path_part, _, attribute = spec.partition(":")
    path = Path(path_part)
    if path.is_dir():
        path = path / "app.py"
    if path.suffix == ".py":
        if not path.exists():
            raise ConfigError(f"no application at {spec!r}: {path} does not exist")
        return _import_file(path), attribute or "app"
    try:
        return importlib.import_module(path_part), attribute or "app"
    except ImportError as error:
        raise ConfigError(f"cannot import application {spec!r}: {error}") from error


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    # The folder holding the app joins sys.path so the app can import its sibling modules.
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"streamsense_app_{abs(hash(str(resolved)))}"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

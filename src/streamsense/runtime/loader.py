"""Finds an application from what a user types: a package folder (``apps/NAME``, holding
``__init__.py`` and ``app.py``), a Python file, or ``package.module[:attribute]``.

A folder is imported as a package of its own under a name no other folder gets, so its
modules import each other relatively (``from . import features``) and nothing is added to
``sys.path``. In the module found, ``application`` (an ``Application``) is the contract;
a bare ``app`` (an ``App``) or ``create_app()`` is an application with nothing optional."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from streamsense.application import Application
from streamsense.errors import ConfigError
from streamsense.runtime.app import App


@dataclass(frozen=True)
class LoadedApp:
    application: Application
    module: ModuleType

    @property
    def app(self) -> App:
        return self.application.app


def load_app(spec: str) -> LoadedApp:
    module, attribute = _import(spec)
    target = _find(module, attribute)
    if isinstance(target, App):
        target = Application(app=target)
    if not isinstance(target, Application):
        wanted = repr(attribute) if attribute else "application, app or create_app()"
        raise ConfigError(f"{spec!r} defines no streamsense Application or App ({wanted})")
    return LoadedApp(target, module)


def import_attribute(path_or_module: str, attribute: str) -> Any:
    """``attribute`` of a Python file or an importable module."""
    module, _ = _import(path_or_module)
    if not hasattr(module, attribute):
        raise ConfigError(f"{path_or_module} has no {attribute!r}")
    return getattr(module, attribute)


def _find(module: ModuleType, attribute: str) -> Any:
    if attribute:
        return getattr(module, attribute, None)
    for name in ("application", "app"):
        if isinstance(getattr(module, name, None), Application | App):
            return getattr(module, name)
    create = getattr(module, "create_app", None)
    return create() if callable(create) else None


def _import(spec: str) -> tuple[ModuleType, str]:
    path_part, _, attribute = spec.partition(":")
    path = Path(path_part)
    if path.is_dir():
        return _import_from_package(path, "app"), attribute
    if path.suffix == ".py":
        if not path.exists():
            raise ConfigError(f"no application at {spec!r}: {path} does not exist")
        if (path.parent / "__init__.py").exists():
            return _import_from_package(path.parent, path.stem), attribute
        return _import_file(path), attribute
    try:
        return importlib.import_module(path_part), attribute
    except ImportError as error:
        raise ConfigError(f"cannot import application {spec!r}: {error}") from error


def _import_from_package(folder: Path, module: str) -> ModuleType:
    package = import_package(folder)
    if not (folder / f"{module}.py").exists():
        raise ConfigError(f"no application in {folder}: it has no {module}.py")
    return importlib.import_module(f"{package.__name__}.{module}")


def import_package(folder: Path) -> ModuleType:
    """The package in ``folder``, imported once per process under a name of its own."""
    if not (folder / "__init__.py").exists():
        raise ConfigError(f"{folder} is not a package: an app folder needs an __init__.py")
    resolved = folder.resolve()
    name = _module_name(resolved, resolved.name)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, resolved / "__init__.py", submodule_search_locations=[str(resolved)]
    )
    return _execute(spec, name, folder)


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    name = _module_name(resolved, resolved.stem)
    if name in sys.modules:
        return sys.modules[name]
    return _execute(importlib.util.spec_from_file_location(name, resolved), name, path)


def _module_name(resolved: Path, stem: str) -> str:
    """Readable in tracebacks, and distinct for two apps of the same name."""
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    safe = re.sub(r"\W", "_", stem)
    return f"streamsense_app_{safe}_{digest}"


def _execute(spec: importlib.machinery.ModuleSpec | None, name: str, path: Path) -> ModuleType:
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module

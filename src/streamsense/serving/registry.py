"""A model registry on a plain directory, safe to share between processes on one machine:

    root/<name>/<version>/model.<ext>    the artifact, byte for byte as registered
    root/<name>/<version>/metadata.json  features, training range, metrics, sha256, ...
    root/<name>/<version>/attached/<file>  files kept beside a version (a monitoring reference
                                         profile): ``attach`` / ``attachment``
    root/<name>/aliases.json             production → 3, shadow → 4, and each alias's history

A version directory appears whole (built aside, then renamed into place); its artifact and
metadata never change. Attached files may be added or replaced later (temp file + os.replace);
aliases.json is replaced atomically (temp file + os.replace) under a per-model file lock, so a
reader sees the old aliases or the new ones, never half of a write. Loading re-hashes the bytes
it loads, so a tampered or truncated artifact is refused rather than served.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError, FatalError
from streamsense.serving.models import Format, FunctionModel, build_scorer

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # never all digits: "3" means version 3
_EXTENSIONS: dict[str, str] = {"onnx": "onnx", "lightgbm": "txt", "skops": "skops", "pickle": "pkl"}


class ModelMetadata(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What metadata.json holds. ``training_range`` is (start, end) in epoch milliseconds."""

    name: str
    version: int
    format: Format
    artifact: str
    content_hash: str
    features: list[str]
    training_range: tuple[int, int] | None = None
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}
    created_at: int = 0


class _AliasChange(msgspec.Struct, frozen=True):
    version: int
    replaced_at: int


class _Aliases(msgspec.Struct):
    aliases: dict[str, int] = {}
    # Per alias, the targets it had before, oldest first: rollback pops the last one.
    history: dict[str, list[_AliasChange]] = {}


class ModelRegistry:
    """Versioned models under ``root``. Versions count up from 1 per model name."""

    def __init__(self, root: Path | str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.root = Path(root)
        self.clock = clock
        self.root.mkdir(parents=True, exist_ok=True)

    def register(
        self,
        name: str,
        artifact_path: Path | str,
        format: Format,
        features: Sequence[str],
        metrics: Mapping[str, float] | None = None,
        training_range: tuple[int, int] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        trusted_types: Sequence[str] = (),
    ) -> int:
        """Copy the artifact in as the next version and return that version. The artifact
        is loaded once first (pickles excepted: they are never run at registration), so a
        model that cannot serve its declared features is refused now, not at deployment."""
        _check_name(name)
        data = Path(artifact_path).read_bytes()
        _check_features(features)
        if training_range is not None and training_range[0] > training_range[1]:
            raise ConfigError(f"training range starts after it ends: {training_range}")
        if format != "pickle":
            build_scorer(
                format,
                data,
                len(features),
                params=dict(params or {}),
                trusted_types=trusted_types,
                convert=False,
            )
        with self._locked(name):
            version = self._next_version(name)
            meta = ModelMetadata(
                name=name,
                version=version,
                format=format,
                artifact=f"model.{_EXTENSIONS[format]}",
                content_hash=_sha256(data),
                features=list(features),
                training_range=training_range,
                metrics=dict(metrics or {}),
                params=dict(params or {}),
                created_at=self.clock.now_ms(),
            )
            self._write_version(meta, data)
        return version

    def load(
        self,
        name: str,
        version_or_alias: int | str,
        *,
        trust_pickle: bool = False,
        trusted_types: Sequence[str] = (),
        convert: bool = True,
    ) -> FunctionModel:
        """The model, ready to score. ``convert=False`` keeps LightGBM and scikit-learn models
        on their own runtime instead of onnxruntime."""
        meta = self.metadata(name, version_or_alias)
        path = self._version_dir(name, meta.version) / meta.artifact
        data = path.read_bytes()  # hashed and loaded from the same bytes: no swap in between
        if _sha256(data) != meta.content_hash:
            raise FatalError(
                f"model {name} v{meta.version}: {path} does not match the sha256 recorded at "
                "registration; the artifact was modified or corrupted, refusing to load it"
            )
        scorer, runtime = build_scorer(
            meta.format,
            data,
            len(meta.features),
            params=meta.params,
            trust_pickle=trust_pickle,
            trusted_types=trusted_types,
            convert=convert,
        )
        return FunctionModel(
            scorer,
            meta.features,
            name=name,
            version=meta.version,
            format=meta.format,
            content_hash=meta.content_hash,
            runtime=runtime,
        )

    def metadata(self, name: str, version_or_alias: int | str) -> ModelMetadata:
        version = self.resolve(name, version_or_alias)
        path = self._version_dir(name, version) / "metadata.json"
        try:
            return msgspec.json.decode(path.read_bytes(), type=ModelMetadata)
        except FileNotFoundError:
            raise ConfigError(f"model {name} has no version {version}") from None
        except msgspec.ValidationError as error:
            raise FatalError(f"{path} is not valid model metadata: {error}") from None

    def resolve(self, name: str, version_or_alias: int | str) -> int:
        """A version number, from a version (``3``, ``"3"``) or an alias (``"production"``)."""
        _check_name(name)
        if isinstance(version_or_alias, int):
            return version_or_alias
        if version_or_alias.isdigit():
            return int(version_or_alias)
        target = self._read_aliases(name).aliases.get(version_or_alias)
        if target is None:
            raise ConfigError(f"model {name} has no alias {version_or_alias!r}")
        return target

    def list(self, name: str | None = None) -> builtins.list[ModelMetadata]:
        """Every registered version (of one model, or of all), by name then version."""
        names = (
            [name]
            if name is not None
            else sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))
        )
        return [self.metadata(n, v) for n in names for v in self._versions(n)]

    def aliases(self, name: str) -> dict[str, int]:
        return dict(self._read_aliases(name).aliases)

    def set_alias(self, name: str, alias: str, version_or_alias: int | str) -> int:
        """Point ``alias`` at a version (or at another alias's target: promote shadow to
        production) and return that version. The previous target is kept for rollback."""
        if not _ALIAS.match(alias):
            raise ConfigError(
                f"alias {alias!r}: use letters, digits, _ . - and start with a letter"
            )
        with self._locked(name):
            version = self.resolve(name, version_or_alias)
            if version not in self._versions(name):
                raise ConfigError(f"model {name} has no version {version}")
            state = self._read_aliases(name)
            previous = state.aliases.get(alias)
            if previous is not None and previous != version:
                change = _AliasChange(previous, self.clock.now_ms())
                state.history.setdefault(alias, []).append(change)
            state.aliases[alias] = version
            self._write_aliases(name, state)
        return version

    def rollback(self, name: str, alias: str) -> int:
        """Point ``alias`` back at its previous target and return it."""
        with self._locked(name):
            state = self._read_aliases(name)
            past = state.history.get(alias)
            if not past:
                raise ConfigError(f"model {name}: alias {alias!r} has no earlier target")
            state.aliases[alias] = past.pop().version
            self._write_aliases(name, state)
            return state.aliases[alias]

    def attach(self, name: str, version_or_alias: int | str, filename: str, data: bytes) -> Path:
        """Keep ``data`` beside a version as ``filename`` (replacing an earlier one, atomically)
        and return its path: what describes the model without being it, such as the reference
        profile monitoring compares live data with."""
        folder = self._version_dir(name, self.metadata(name, version_or_alias).version)
        target = folder / "attached" / _attachment_name(filename)
        target.parent.mkdir(exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        _write_synced(temporary, data)
        os.replace(temporary, target)
        return target

    def attachment(self, name: str, version_or_alias: int | str, filename: str) -> bytes:
        folder = self._version_dir(name, self.metadata(name, version_or_alias).version)
        try:
            return (folder / "attached" / _attachment_name(filename)).read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"model {name} {version_or_alias}: nothing attached as {filename!r}"
            ) from None

    def _version_dir(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def _versions(self, name: str) -> builtins.list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def _next_version(self, name: str) -> int:
        versions = self._versions(name)
        return versions[-1] + 1 if versions else 1

    def _write_version(self, meta: ModelMetadata, data: bytes) -> None:
        folder = self.root / meta.name
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            _write_synced(staging / meta.artifact, data)
            _write_synced(staging / "metadata.json", msgspec.json.format(msgspec.json.encode(meta)))
            os.rename(staging, folder / str(meta.version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _read_aliases(self, name: str) -> _Aliases:
        path = self.root / name / "aliases.json"
        try:
            return msgspec.json.decode(path.read_bytes(), type=_Aliases)
        except FileNotFoundError:
            return _Aliases()
        except msgspec.ValidationError as error:
            raise FatalError(f"{path} is not a valid aliases file: {error}") from None

    def _write_aliases(self, name: str, state: _Aliases) -> None:
        folder = self.root / name
        temp = folder / f".aliases.json.{os.getpid()}.tmp"
        _write_synced(temp, msgspec.json.format(msgspec.json.encode(state)))
        os.replace(temp, folder / "aliases.json")

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """One writer per model at a time, across processes (readers need no lock)."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"model name {name!r}: use letters, digits, _ . - (not a path)")


def _attachment_name(filename: str) -> str:
    if not _NAME.match(filename):
        raise ConfigError(f"attachment name {filename!r}: use letters, digits, _ . - (not a path)")
    return filename


def _check_features(features: Sequence[str]) -> None:
    if isinstance(features, str) or not features:
        raise ConfigError("a model needs its feature list, in input order")
    duplicates = sorted({f for f in features if list(features).count(f) > 1})
    if duplicates:
        raise ConfigError(f"features listed twice: {duplicates}")

"""Reading the deployment files as their tools would (issue #20): YAML documents, compose's
variable interpolation, `kubectl kustomize`, the Dockerfile's instructions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(ValueError):
    """A `${NAME:?message}` compose requires and the environment lacks."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `${NAME:?error}`."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        given = env.get(name)
        if op in (":-", ":?") and not given:
            given = None
        if given is not None:
            return given
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _VARIABLE.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def compose_file(env: Mapping[str, str], text: str | None = None) -> dict[str, Any]:
    """The compose file as `docker compose config` would read it, extension fields and
    merge keys resolved by YAML, variables from ``env``."""
    source = COMPOSE.read_text() if text is None else text
    loaded: dict[str, Any] = yaml.safe_load(interpolate(source, env))
    return loaded


def kustomize(directory: Path, api_key: str = "test-key") -> list[dict[str, Any]]:
    """`kubectl kustomize` of a copy of ``directory``, with the API key file the operator
    writes (it is not in git): the objects a `kubectl apply -k` would send."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise AssertionError("kubectl is needed to build deploy/k8s (kubectl kustomize)")
    return _built(kubectl, directory, api_key)


def _built(kubectl: str, directory: Path, api_key: str) -> list[dict[str, Any]]:
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        copy = Path(temporary) / "k8s"
        shutil.copytree(directory, copy)
        (copy / "api-key.env").write_text(f"STREAMSENSE_API_KEY={api_key}\n")
        built = subprocess.run(
            [kubectl, "kustomize", str(copy)], capture_output=True, text=True, timeout=60
        )
    if built.returncode != 0:
        raise AssertionError(f"kubectl kustomize failed: {built.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM it belongs to

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of ENTRYPOINT, CMD and the like."""
        parsed = json.loads(self.arguments)
        assert isinstance(parsed, list), f"{self.keyword} is not in exec form"
        return [str(part) for part in parsed]


def dockerfile(text: str | None = None) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    source = DOCKERFILE.read_text() if text is None else text
    joined = re.sub(r"\\\n", " ", "\n".join(_code_lines(source)))
    instructions: list[Instruction] = []
    stage = -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split()), stage))
    return instructions


def _code_lines(source: str) -> list[str]:
    return [line for line in source.splitlines() if not line.lstrip().startswith("#")]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: Docker's rules, the last pattern that
    matches the path or one of its parent folders decides, ``!`` includes again."""
    from fnmatch import fnmatchcase

    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        if any(fnmatchcase(prefix, pattern) for prefix in prefixes):
            excluded = not negated
    return excluded


def dockerignore_patterns(text: str | None = None) -> list[str]:
    source = DOCKERIGNORE.read_text() if text is None else text
    return [line.strip() for line in source.splitlines() if line.strip() and line[0] != "#"]

"""What the code really uses, for the deployment files to be checked against: environment
variables read, the fraud app's group, topics and partitions, the API's health routes,
the CLI's defaults. Taken from the code each time, never copied."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from functools import cache

from streamsense.brokers.kafka import DEFAULT_TRANSACTION_TIMEOUT_MS, KafkaBroker
from streamsense.cli.apps import serve
from streamsense.runtime.loader import load_app
from streamsense.runtime.topology import Topology

from .files import ROOT

_ENV_NAME = re.compile(r"STREAMSENSE_[A-Z0-9_]+")


@cache
def environment_names() -> frozenset[str]:
    """Every STREAMSENSE_* name the package or an app's code names as a whole string (an
    `os.environ.get("...")` or the constant passed to one); tests are left out."""
    names: set[str] = set()
    for folder in (ROOT / "src" / "streamsense", ROOT / "apps"):
        for path in folder.rglob("*.py"):
            if "tests" in path.relative_to(folder).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                value = node.value if isinstance(node, ast.Constant) else None
                if isinstance(value, str) and _ENV_NAME.fullmatch(value):
                    names.add(value)
    return frozenset(names)


@dataclass(frozen=True)
class AppFacts:
    group: str
    topics: frozenset[str]  # every topic the app's workers read
    partitions: int  # of each of them (an app's sources are co-partitioned)


@cache
def app_facts(folder: str) -> AppFacts:
    """The consumer group, source topics and partition count the runtime uses for the app
    in ``folder`` (apps/NAME)."""
    app = load_app(str(ROOT / folder)).app
    topology = Topology.of(app)
    configs = topology.topic_configs
    counts = {configs[topic].partitions for topic in topology.sources}
    assert len(counts) == 1, f"{folder}: sources with different partition counts {counts}"
    return AppFacts(topology.group, frozenset(topology.sources), counts.pop())


def serve_default_port() -> int:
    port = inspect.signature(serve).parameters["port"].default
    assert isinstance(port, int)
    return port


def consumer_offset_reset() -> str:
    """Where a Kafka consumer of a group with no committed offset starts."""
    reset = inspect.signature(KafkaBroker.consumer).parameters["auto_offset_reset"].default
    assert isinstance(reset, str)
    return reset


def transaction_timeout_s(query: dict[str, str]) -> float:
    """The transaction timeout a Kafka broker URL's options give (or the default)."""
    return int(query.get("transaction_timeout_ms", DEFAULT_TRANSACTION_TIMEOUT_MS)) / 1000


def app_folder(args: list[str]) -> str:
    """The app a `streamsense run|serve APP ...` command line names."""
    assert args and args[0] in ("run", "serve"), f"not a run or serve command: {args}"
    positional = [a for a in args[1:] if not a.startswith("-")]
    folder = positional[0]
    assert (ROOT / folder / "app.py").exists(), f"{folder}: no such app in the repository"
    return folder

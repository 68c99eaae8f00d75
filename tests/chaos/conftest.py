"""Chaos tests: real worker processes on a real Kafka broker (127.0.0.1), with faults
injected while events flow. Each scenario checks that no event is lost and no action
duplicated, that degraded decisions say so, and records its figures (events, lost,
duplicates, degraded, breaker open→closed, time to recover) to ``figures.json`` in its tmp
dir, and to the JSON-lines file ``$STREAMSENSE_CHAOS_FIGURES`` when set
(bench/chaos_report.py collects them into docs/reliability.md)."""

from __future__ import annotations

import json
import os
import platform
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps.chaos_app import train_model
from tests.chaos.harness import Scenario
from tests.chaos.kafka_node import KafkaNode
from tests.chaos.pipeline import ChaosPipeline

FIGURES_ENV = "STREAMSENSE_CHAOS_FIGURES"


@pytest.fixture(scope="package")
def chaos_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    """A broker of the chaos tests' own: they restart it (see kafka_node)."""
    node = KafkaNode(tmp_path_factory.mktemp("chaos-kafka"))
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="package")
def chaos_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory.mktemp("chaos-model") / "model.onnx")


@pytest.fixture
def scenario(chaos_kafka: KafkaNode, chaos_model: Path, tmp_path: Path) -> Scenario:
    return Scenario(f"chaos-{uuid.uuid4().hex[:10]}", chaos_kafka.bootstrap, tmp_path, chaos_model)


@pytest.fixture
def make_pipeline(scenario: Scenario) -> Iterator[Callable[..., ChaosPipeline]]:
    """Pipelines made in a test are torn down after it (workers killed if still running)."""
    made: list[ChaosPipeline] = []

    def make(*, exactly_once: bool) -> ChaosPipeline:
        made.append(ChaosPipeline(scenario, exactly_once=exactly_once))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The scenario's measured figures; written when the test passes."""
    scenario = request.node.path.stem.removeprefix("test_").replace("_", " ")
    callspec = getattr(request.node, "callspec", None)
    found: dict[str, Any] = {"scenario": f"{scenario} [{callspec.id}]" if callspec else scenario}
    yield found
    report = getattr(request.node, "chaos_call_report", None)
    if report is None or not report.passed:
        return
    found["machine"] = f"{platform.node()} ({os.cpu_count()} cpus, {platform.machine()})"
    (tmp_path / "figures.json").write_text(json.dumps(found, indent=2))
    collected = os.environ.get(FIGURES_ENV)
    if collected:
        with open(collected, "a") as out:
            out.write(json.dumps(found) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.chaos_call_report = report  # type: ignore[attr-defined]
    return report

"""Consumer lag per partition: the library computation, the Prometheus gauges and
`streamsense status`, on the embedded broker and on real Kafka."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import streamsense as ss
from streamsense.brokers import EmbeddedBroker
from streamsense.brokers.base import Broker
from streamsense.brokers.kafka import KafkaBroker
from streamsense.cli.main import cli
from streamsense.observability.metrics import Metrics
from streamsense.runtime.lag import consumed_topics, group_lag
from streamsense.runtime.worker import Worker
from tests.apps.counter import Click, count, make_clicks

Names = Callable[[str], str]
ROOT = Path(__file__).resolve().parents[2]
COUNTER = str(ROOT / "tests" / "apps" / "counter.py")
runner = CliRunner()


def status(*args: str) -> str:
    result = runner.invoke(cli, ["status", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def counter(names: Names) -> tuple[ss.App, ss.Stream[Click]]:
    clicks = ss.Stream(names("clicks"), Click, key="user", time="ts", partitions=3)
    app = ss.App(names("counter"))
    app.flow(clicks).stage("count", count).sink(ss.TopicSink(f"{app.name}.counts"))
    return app, clicks


def feed(broker: Broker, clicks: ss.Stream[Click], items: list[Click]) -> None:
    with broker.producer() as producer:
        for click in items:
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)


def check_lag_follows_the_group(broker: Broker, names: Names) -> tuple[ss.App, ss.Stream[Click]]:
    app, clicks = counter(names)
    Worker(app, broker).ensure_topics()
    items = make_clicks(120)
    feed(broker, clicks, items[:90])
    before = group_lag(broker, app.group, [clicks.topic])
    assert [p.committed for p in before.partitions] == [None, None, None]
    assert [p.lag for p in before.partitions] == [p.high for p in before.partitions]
    assert before.total == 90
    assert consumed_topics(broker, app.group) == []

    Worker(app, broker).run(until_caught_up=True)
    feed(broker, clicks, items[90:])
    after = group_lag(broker, app.group, [clicks.topic])
    assert after.total == 30
    for p in after.partitions:
        assert p.committed is not None and p.lag == p.high - p.committed
    assert sum(p.high for p in after.partitions) == 120
    assert consumed_topics(broker, app.group) == [clicks.topic]

    metrics = Metrics()
    metrics.observe_lag(after)
    text = metrics.render().decode()
    assert f'streamsense_consumer_lag_total{{group="{app.group}"}} 30.0' in text
    for p in after.partitions:
        labels = f'group="{app.group}",partition="{p.partition}",topic="{clicks.topic}"'
        assert f"streamsense_consumer_lag{{{labels}}} {float(p.lag)}" in text
    return app, clicks


def test_lag_on_the_embedded_broker_and_in_status(tmp_path: Path) -> None:
    names = iter(["clicks", "counter"]).__next__
    broker = EmbeddedBroker(tmp_path / "broker.db")
    check_lag_follows_the_group(broker, lambda base: names())
    broker.close()
    state = str(tmp_path)
    shown = json.loads(status(COUNTER, "--state-dir", state, "--format", "json"))
    assert shown["group"] == "counter" and shown["total"] == 30
    assert [p["partition"] for p in shown["partitions"]] == [0, 1, 2]
    assert sum(p["high"] - p["committed"] for p in shown["partitions"]) == 30
    table = " ".join(status("--group", "counter", "--state-dir", state).split())
    assert "committed" in table and "high watermark" in table and "total" in table
    assert " 30 " in table
    prometheus = status(COUNTER, "--state-dir", state, "--format", "prometheus")
    assert 'streamsense_consumer_lag_total{group="counter"} 30.0' in prometheus


def test_status_needs_an_app_or_a_group(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--group" in result.output


@pytest.mark.kafka
def test_lag_on_kafka_and_in_status(kafka: KafkaBroker, unique: Names) -> None:
    app, clicks = check_lag_follows_the_group(kafka, unique)
    shown = json.loads(status("--group", app.group, "--broker", kafka.url, "--format", "json"))
    assert shown["total"] == 30
    assert {p["topic"] for p in shown["partitions"]} == {clicks.topic}

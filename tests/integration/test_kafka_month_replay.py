"""A month of the handbook's payments (288,062 payments and their labels) through the fraud
app on real Kafka, the worker SIGKILLed mid-way and the same command run again: the
features equal the embedded broker's run exactly. The feature stage's state (10,000
terminals and 5,000 customers with 30-day windows: far more than one 1 MB record) goes to
its changelog one key per record, and the restarted worker restores it from there.

Runs on a Kafka broker of its own (another port), so it can run beside the other tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.month_replay import assert_killed_month_equals_embedded
from tests.script_server import ScriptServer

SERVER = ScriptServer(
    "kafka.sh",
    start_timeout_s=600,
    stop_timeout_s=60,
    env={
        "KAFKA_PORT": "19392",
        "KAFKA_CONTROLLER_PORT": "19393",
        "STREAMSENSE_KAFKA_RUN": "/tmp/streamsense-kafka-month",
    },
    fresh=True,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.own_broker, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def month_kafka() -> Iterator[str]:
    yield SERVER.acquire()
    SERVER.release()


def test_a_month_on_kafka_killed_mid_way_equals_the_embedded_run(
    handbook_file: Path, month_kafka: str, tmp_path: Path
) -> None:
    assert_killed_month_equals_embedded(handbook_file, f"kafka://{month_kafka}", tmp_path)

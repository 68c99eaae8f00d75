"""A month of the handbook's payments (288,062 payments and their labels) through the fraud
app on real Pulsar, the worker SIGKILLed mid-way and the same command run again: the
features equal the embedded broker's run exactly (at least once: a payment decided again
after the kill carries the very same features). The feature stage's state goes to its
changelog topic on Pulsar, and the restarted worker restores it from there.

Runs on a Pulsar broker of its own (other ports, fresh data): the app's topic names are
fixed, so it cannot share the session's broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.month_replay import assert_killed_month_equals_embedded
from tests.script_server import ScriptServer

SERVER = ScriptServer(
    "pulsar.sh",
    start_timeout_s=900,
    stop_timeout_s=60,
    env={
        "PULSAR_PORT": "16660",
        "PULSAR_HTTP_PORT": "18090",
        "PULSAR_BOOKIE_PORT": "13191",
        "STREAMSENSE_PULSAR_RUN": "/tmp/streamsense-pulsar-month",
    },
    fresh=True,
)

pytestmark = [
    pytest.mark.pulsar,
    pytest.mark.slow,
    pytest.mark.own_broker,
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def month_pulsar() -> Iterator[str]:
    yield SERVER.acquire()
    SERVER.release()


def test_a_month_on_pulsar_killed_mid_way_equals_the_embedded_run(
    handbook_file: Path, month_pulsar: str, tmp_path: Path
) -> None:
    assert_killed_month_equals_embedded(handbook_file, month_pulsar, tmp_path)

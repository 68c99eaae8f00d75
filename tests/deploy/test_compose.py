"""deploy/compose.yaml (issue #20): parsed as compose would, every streamsense command put
to the real CLI, every variable one the code reads, every dependency a service with a
health check. No Docker engine runs here, so `docker compose config` cannot; the broken
copies below show each check fails when it should."""

from __future__ import annotations

import pytest

from .compose_checks import compose_problems
from .files import COMPOSE, MissingVariable, compose_file

ENV = {"STREAMSENSE_API_KEY": "test-key"}


def test_the_compose_file_is_right() -> None:
    assert compose_problems(compose_file(ENV)) == []


def test_n_workers_and_the_api_key_come_from_the_environment() -> None:
    compose = compose_file({**ENV, "WORKERS": "3"})
    assert compose["services"]["worker"]["deploy"]["replicas"] == 3
    assert compose["services"]["api"]["environment"]["STREAMSENSE_API_KEY"] == "test-key"
    with pytest.raises(MissingVariable, match="STREAMSENSE_API_KEY"):
        compose_file({})  # compose refuses to start an API without a key


def broken(old: str, new: str) -> list[str]:
    text = COMPOSE.read_text()
    assert old in text, old
    return compose_problems(compose_file(ENV, text.replace(old, new, 1)))


BREAKAGES = {
    "renamed option": ("- --session-timeout-ms", "- --session-timeout", "No such option"),
    "value of the wrong type": ('- "10000"', "- ten-seconds", "valid integer"),
    "command gone": ("- fraud\n      - train", "- fraud\n      - retrain", "No such command"),
    "variable nobody reads": (
        "STREAMSENSE_ONLINE_STORE: redis://redis:6379/0\n    deploy",
        "ONLINE_STORE: x\n    deploy",
        "read nowhere",
    ),
    "broker URL option": ("exactly_once=true", "exactly_once=true&linger_ms=5", "unknown kafka"),
    "at least once workers": ("exactly_once=true", "exactly_once=false", "should be true"),
    "wrong broker host": ("kafka://kafka:9092?", "kafka://broker:9092?", "kafka advertises"),
    "grace under the timeout": ("stop_grace_period: 90s", "stop_grace_period: 30s", "timeout"),
    "dependency on no service": (
        "      redis:\n        condition: service_healthy\n    restart: unless-stopped\n\n  api",
        "      cache:\n        condition: service_healthy\n    restart: unless-stopped\n\n  api",
        "'cache', which is no service",
    ),
    "undeclared volume": ("  models:\n", "", "not declared"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_compose_file_fails(breakage: str) -> None:
    old, new, expected = BREAKAGES[breakage]
    problems = broken(old, new)
    assert any(expected in problem for problem in problems), problems

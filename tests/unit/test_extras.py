"""A missing optional dependency is one line naming the extra to install."""

from __future__ import annotations

import sys

import pytest

from streamsense.brokers import open_broker
from streamsense.errors import MissingExtra, StreamsenseError
from streamsense.extras import require
from streamsense.serving.models import Format, build_scorer
from streamsense.store import open_online_store


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # an import of it now fails
    with pytest.raises(MissingExtra) as raised:
        require("onnxruntime", "ml")
    assert str(raised.value) == "onnxruntime is not installed: pip install 'streamsense[ml]'"
    assert isinstance(raised.value, StreamsenseError) and not raised.value.retryable


@pytest.mark.parametrize(
    ("model_format", "module"),
    [("onnx", "onnxruntime"), ("lightgbm", "lightgbm"), ("skops", "skops.io")],
)
def test_loading_a_model_without_the_ml_extra(
    monkeypatch: pytest.MonkeyPatch, model_format: Format, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra) as raised:
        build_scorer(model_format, b"model bytes", 3, params={})
    assert str(raised.value) == f"{module} is not installed: pip install 'streamsense[ml]'"


def test_kafka_pulsar_and_redis_urls_without_their_extras(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    monkeypatch.setitem(sys.modules, "pulsar", None)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtra, match=r"streamsense\[kafka\]"):
        open_broker("kafka://127.0.0.1:9")
    with pytest.raises(MissingExtra, match=r"streamsense\[pulsar\]"):
        open_broker("pulsar://127.0.0.1:9")
    with pytest.raises(MissingExtra, match=r"streamsense\[redis\]"):
        open_online_store("redis://127.0.0.1:9/0")


def test_the_command_line_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from streamsense.cli.main import cli

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(cli, ["serve", "tests.apps.counter:app"])
    assert result.exit_code == 2
    assert "uvicorn is not installed: pip install 'streamsense[serving]'" in result.output

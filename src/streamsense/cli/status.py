"""`streamsense status`: how far a consumer group is behind, per topic-partition.

    streamsense status apps/NAME                   # the app's group on its source topics
    streamsense status --group NAME --broker kafka://127.0.0.1:9092
    streamsense status apps/NAME --format prometheus

With ``--group`` alone, every topic where the group committed an offset is shown (or the
``--topic`` ones). Lag is counted in offsets (see ``streamsense.runtime.lag``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.table import Table

from streamsense.brokers import Broker
from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    BrokerOption,
    StateDirOption,
    connect,
    console,
    fail,
)
from streamsense.errors import StreamsenseError
from streamsense.runtime.lag import GroupLag, consumed_topics, group_lag
from streamsense.runtime.loader import load_app

FORMATS = ("table", "json", "prometheus")


def status(
    app: Annotated[
        str | None, typer.Argument(help="App folder, file.py or module[:attr] (its group).")
    ] = None,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Consumer group.")] = None,
    topics: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="Only these topics (repeatable).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or prometheus.")] = "table",
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Per topic-partition: the group's committed offset, the high watermark and the lag."""
    if output not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {output!r}")
    if (app is None) == (group is None):
        fail("name an APP or a --group (one of them)")
    target = connect(broker, state_dir)
    try:
        lag = _lag(target, app, group, topics)
    except StreamsenseError as error:
        fail(str(error))
    finally:
        target.close()
    if output == "json":
        typer.echo(msgspec.json.encode(_as_dict(lag)).decode())
    elif output == "prometheus":
        _print_prometheus(lag)
    else:
        _print_table(lag)


def _lag(broker: Broker, app: str | None, group: str | None, topics: list[str] | None) -> GroupLag:
    if app is not None:
        loaded = load_app(app).app
        return group_lag(broker, group or loaded.group, topics or list(loaded.sources()))
    assert group is not None
    return group_lag(broker, group, topics or consumed_topics(broker, group))


def _as_dict(lag: GroupLag) -> dict[str, object]:
    return {
        "group": lag.group,
        "total": lag.total,
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "high": p.high,
                "lag": p.lag,
            }
            for p in lag.partitions
        ],
    }


def _print_table(lag: GroupLag) -> None:
    table = Table("topic", "partition", "committed", "high watermark", "lag", title=lag.group)
    for p in lag.partitions:
        committed = "-" if p.committed is None else f"{p.committed:,}"
        table.add_row(p.topic, str(p.partition), committed, f"{p.high:,}", f"{p.lag:,}")
    table.add_section()
    table.add_row("total", "", "", "", f"{lag.total:,}")
    console.print(table)


def _print_prometheus(lag: GroupLag) -> None:
    try:
        from streamsense.observability.metrics import Metrics
    except ImportError:
        fail("--format prometheus needs prometheus-client (pip install prometheus-client)")
    metrics = Metrics()
    metrics.observe_lag(lag)
    typer.echo(metrics.render().decode(), nl=False)

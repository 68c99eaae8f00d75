"""`streamsense topics list|create|describe`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from streamsense.brokers import TopicConfig
from streamsense.cli.common import (
    DEFAULT_STATE_DIR,
    BrokerOption,
    StateDirOption,
    connect,
    console,
    fail,
)
from streamsense.errors import StreamsenseError

topics_app = typer.Typer(help="Create, list and describe topics.", no_args_is_help=True)


@topics_app.command("list")
def list_topics(broker: BrokerOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """List topics with their partition and message counts."""
    with_broker = connect(broker, state_dir)
    table = Table("topic", "partitions", "messages")
    for name in with_broker.list_topics():
        info = with_broker.describe_topic(name)
        table.add_row(name, str(info.config.partitions), f"{info.messages:,}")
    console.print(table)
    with_broker.close()


@topics_app.command("create")
def create(
    name: str,
    partitions: Annotated[int, typer.Option("--partitions", "-p", min=1)] = 1,
    retention_ms: Annotated[
        int | None, typer.Option(help="Delete records older than this.")
    ] = None,
    retention_bytes: Annotated[int | None, typer.Option(help="Per-partition size budget.")] = None,
    compacted: Annotated[bool, typer.Option(help="Keep only the latest record per key.")] = False,
    broker: BrokerOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Create a topic."""
    with_broker = connect(broker, state_dir)
    try:
        config = TopicConfig(partitions, retention_ms, retention_bytes, compacted)
        with_broker.create_topic(name, config)
    except StreamsenseError as error:
        fail(str(error))
    finally:
        with_broker.close()
    console.print(f"created {name} with {partitions} partition(s)")


@topics_app.command("describe")
def describe(
    name: str, broker: BrokerOption = None, state_dir: StateDirOption = DEFAULT_STATE_DIR
) -> None:
    """Show a topic's configuration and each partition's offsets."""
    with_broker = connect(broker, state_dir)
    try:
        info = with_broker.describe_topic(name)
    except StreamsenseError as error:
        fail(str(error))
    finally:
        with_broker.close()
    config = info.config
    console.print(
        f"[bold]{info.name}[/bold] partitions={config.partitions} compacted={config.compacted} "
        f"retention_ms={config.retention_ms} retention_bytes={config.retention_bytes}"
    )
    table = Table("partition", "low", "high", "messages")
    for p in info.partitions:
        table.add_row(str(p.partition), str(p.low), str(p.high), f"{p.high - p.low:,}")
    console.print(table)

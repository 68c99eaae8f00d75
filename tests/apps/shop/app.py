"""Orders and customer profiles, two streams joined by customer through keyed state.

    shop.orders ────→ tag ─┐
                           ├─→ shop.keyed ─→ join ─→ shop.joined
    shop.customers ─→ tag ─┘

Both streams are keyed by ``user``, so one topic keyed alike brings a customer's orders and
profile to the same partition, where the join keeps the name and the orders still waiting
for it. The result does not depend on which stream is read first. No training; the command
line needs no change to replay, run, serve or demo it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import msgspec
from rich.console import Console

import streamsense as ss
from streamsense.application import InputOption, Option, OptionValue, Session
from streamsense.testing import drain_topic

from .serving import serving


class Order(ss.Schema):
    order_id: int
    user: str
    ts: int
    amount: float


class Customer(ss.Schema):
    user: str
    ts: int
    name: str


class Keyed(ss.Schema):
    """Either an order (``order_id`` ≥ 0) or a profile (``name``), on one keyed topic."""

    user: str
    ts: int
    order_id: int = -1
    amount: float = 0.0
    name: str = ""


class Joined(msgspec.Struct):
    order_id: int
    user: str
    name: str
    amount: float


orders = ss.Stream("shop.orders", Order, key="user", time="ts", partitions=2)
customers = ss.Stream("shop.customers", Customer, key="user", time="ts", partitions=2)
keyed = ss.Stream("shop.keyed", Keyed, key="user", time="ts", partitions=2)


def tag_order(order: Order, ctx: ss.Context) -> Keyed:
    return Keyed(order.user, order.ts, order_id=order.order_id, amount=order.amount)


def tag_customer(customer: Customer, ctx: ss.Context) -> Keyed:
    return Keyed(customer.user, customer.ts, name=customer.name)


def join(event: Keyed, ctx: ss.Context) -> list[Joined] | None:
    """The orders this event completes: all waiting ones when the name arrives, this one
    when the name is known; None while an order waits for its customer."""
    name, waiting = ctx.state.get(("", []))
    if event.order_id >= 0:
        waiting = [*waiting, (event.order_id, event.amount)]
    else:
        name = event.name
    ctx.state.set((name, [] if name else waiting))
    if not name or not waiting:
        return None
    return [Joined(order_id, event.user, name, amount) for order_id, amount in waiting]


app = ss.App("shop")
app.flow(orders).stage("tag-order", tag_order).sink(ss.TopicSink(keyed.topic))
app.flow(customers).stage("tag-customer", tag_customer).sink(ss.TopicSink(keyed.topic))
app.flow(keyed).stage("join", join).sink(ss.TopicSink("shop.joined"))


def joined(broker: ss.Broker) -> list[dict[str, object]]:
    return [
        row
        for record in drain_topic(broker, "shop.joined")
        for row in json.loads(record.value or b"[]")
    ]


def export_joined(broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None) -> int:
    rows = joined(broker)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return len(rows)


def summary(broker: ss.Broker, console: Console, inputs: Mapping[str, Path]) -> None:
    console.print(f"shop: {len(joined(broker))} orders joined")


def write_demo_files(folder: Path, customers_n: int, orders_n: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    people = [{"user": f"u{i}", "ts": 1_000 * i, "name": f"name-{i}"} for i in range(customers_n)]
    bought = [
        {"order_id": i, "user": f"u{i % customers_n}", "ts": 500 * i, "amount": float(i)}
        for i in range(orders_n)
    ]
    files = {"customers": folder / "customers.jsonl", "orders": folder / "orders.jsonl"}
    for name, rows in (("customers", people), ("orders", bought)):
        files[name].write_text("".join(json.dumps(row) + "\n" for row in rows))
    return files


def demo(session: Session, options: Mapping[str, OptionValue]) -> Mapping[str, Path]:
    return write_demo_files(
        session.state_dir, int(str(options["customers"])), int(str(options["orders"]))
    )


application = ss.Application(
    app=app,
    inputs={"orders": orders, "customers": customers},
    input_options=[InputOption("orders"), InputOption("customers")],
    exports={"joined": export_joined},
    summary=summary,
    serving=serving,
    demo=demo,
    demo_options=[Option("customers", 5), Option("orders", 20)],
)

"""Request-time folds straight from stored blobs (store.blob_fold) against the engine's own
reads: two views read in one round trip, every window kind, mixed read times, unknown keys,
events counted in their own windows, and malformed blobs refused."""

from __future__ import annotations

import random

import numpy as np
import pytest

import streamsense as ss
from streamsense import features as F
from streamsense.errors import FatalError
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.online import OnlineRow
from streamsense.store.views import OnlineFeatures, OnlineView, decode_rows, encode_rows, rows_of

T0 = 1_600_000_000_000


class Pay(ss.Schema):
    user: str
    shop: str
    ts: int
    amount: float
    items: int


pays = ss.Stream("vpays", Pay, key="user", time="ts", partitions=1)
user = F.FeatureGroup(pays, key="user")
user.add("n_10s", F.count(), F.rolling("10s"))
user.add("sum_1m", F.sum("amount"), F.rolling("1m"))
user.add("mean_1m_late", F.mean("amount"), F.rolling("1m", offset="5s"))
user.add("std_1m", F.std("amount"), F.rolling("1m"))
user.add("max_3", F.max("amount"), F.last_n(3))
user.add("n_session", F.count(), F.session("4s"))
user.add("n_hop", F.count(), F.hopping("30s", "10s"))
user.add("distinct_items", F.distinct_count("items"), F.tumbling("1m"))
shop = F.FeatureGroup(pays, key="shop")
shop.add("shop_n_30s", F.count(), F.rolling("30s"))
shop.add("shop_last", F.last("amount"), F.rolling("30s"))
FEATURES = F.FeatureSet("views", [*user.features, *shop.features])


def make_pays(n: int, seed: int) -> list[Pay]:
    rng = random.Random(seed)
    ts = T0
    out = []
    for _ in range(n):
        ts += rng.choice([0, 300, 1_000, 2_500, 7_000])  # equal times included
        out.append(
            Pay(
                f"u{rng.randrange(12)}",
                f"s{rng.randrange(5)}",
                ts,
                rng.uniform(1, 50),
                rng.randrange(4),
            )
        )
    return out


def filled(items: list[Pay]) -> tuple[F.FeatureEngine, MemoryOnlineStore]:
    engine = F.FeatureEngine(FEATURES)
    times = np.array([p.ts for p in items], np.int64)
    engine.process(0, times, engine.columns_of([_Wrapped(p) for p in items]))  # log order
    store = MemoryOnlineStore()
    for group, state in engine.partition(0).groups.items():
        keys = [k for k in state.buffer.key_of if k is not None]
        store.write(engine.view_name(group), rows_of(state.buffer, [*keys, "nobody"]))
    return engine, store


class _Wrapped:
    def __init__(self, payload: Pay) -> None:
        self.payload = payload


def test_both_views_folded_from_blobs_equal_the_engines_reads() -> None:
    items = make_pays(600, seed=1)
    engine, store = filled(items)
    online = OnlineFeatures(FEATURES, store)
    last = items[-1].ts
    asked = [Pay(f"u{i % 14}", f"s{i % 7}", 0, 0.0, 0) for i in range(40)]  # some unknown
    at = [last + random.Random(i).choice([-3_000, 0, 999, 6_000, 40_000]) for i in range(40)]
    got = online.matrix(asked, at)
    for i, (pay, t) in enumerate(zip(asked, at, strict=True)):
        expected = {**engine.read_many([pay.user], t)[0], **_shop(engine, pay.shop, t)}
        row = dict(zip(FEATURES.names, got[i].tolist(), strict=True))
        assert row == expected, (pay, t)


def _shop(engine: F.FeatureEngine, key: str, at: int) -> dict[str, float]:
    values = engine.partition(0).read("shop", [key], np.array([at], np.int64))[0]
    return dict(zip([f.name for f in shop.features], values.tolist(), strict=True))


def test_events_counted_in_their_windows_equal_the_streams_values() -> None:
    items = make_pays(500, seed=2)
    _, store = filled(items[:450])
    online = OnlineFeatures(FEATURES, store)
    last = items[449]
    # The first one shares its time with stored rows: it goes after them, as in the stream.
    following = [Pay(last.user, last.shop, last.ts, 99.5, 3), *items[450:470]]
    got = online.matrix(following, [p.ts for p in following], include_events=True)
    # The stream's values for each of these events, each computed alone after the 450.
    for i, pay in enumerate(following):
        alone, _ = filled(items[:450])
        stream = alone.process(
            0, np.array([pay.ts], np.int64), alone.columns_of([_Wrapped(pay)])
        ).values[0]
        assert got[i].tolist() == stream.tolist(), pay


def test_a_malformed_blob_is_refused_not_read_past() -> None:
    store = MemoryOnlineStore()
    engine = F.FeatureEngine(FEATURES)
    view = OnlineView(engine.view_name("user"), engine.plans["user"], store)
    good = (3).to_bytes(4, "little") + (2).to_bytes(4, "little")  # claims 3 rows, 2 columns
    store.write(view.name, [OnlineRow("bad", T0, good + bytes(8))])
    with pytest.raises(FatalError, match="malformed"):
        view.get(["bad"], T0)
    store.write(view.name, [OnlineRow("odd", T0, b"\x00" * 7)])
    with pytest.raises(FatalError, match="whole number"):
        view.get(["odd"], T0)
    assert view.get(["nobody"], T0)[0]["n_10s"] == 0


def test_rows_of_lays_out_each_keys_window_rows_in_the_blob_format() -> None:
    engine, _ = filled(make_pays(300, seed=3))
    buffer = engine.partition(0).groups["user"].buffer
    keys = ["u3", "nobody", "u0", "u3"]
    rows = rows_of(buffer, keys)
    assert [r.key for r in rows] == ["u3", "u0", "u3"]
    for row in rows:
        slot = buffer.slot_of[row.key]
        first = int(buffer.seg_start[slot] + buffer.seg_begin[slot])
        last = first + int(buffer.seg_len[slot])
        times, values = decode_rows(row.blob)
        assert row.blob == encode_rows(buffer.ptime[first:last], buffer.pval[first:last])
        assert row.event_time == int(times.max())
        assert values.tolist() == buffer.pval[first:last].tolist()

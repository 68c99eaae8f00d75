"""The recommender's state as one changelog entry per user and per movie (and a small meta),
so a state write carries only what changed since the last one and a restore rebuilds the
model exactly: every row keeps its dense index, so rankings (ties included) after a restart
are the ones an uninterrupted run makes.

    user entry   index, userId, interactions, recent ring, short and long genre profiles,
                 every movie rated (dense indices, oldest first)
    movie entry  index, movieId, genres, popularity, count, neighbours and their weights
    meta         sequence, popularity scale times, trending lists, genre names, sizes
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import numpy as np

from . import kernels as K
from . import layout as L
from .layout import EMPTY
from .model import RecsModel, new_items, new_shared, new_users


class UserEntry(msgspec.Struct, array_like=True):
    index: int
    user: int
    seen: int
    recent: bytes
    short: bytes
    long: bytes
    rated: bytes


class ItemEntry(msgspec.Struct, array_like=True):
    index: int
    movie: int
    genre_list: bytes
    n_genres: float
    pop: bytes
    count: float
    nbr_id: bytes
    nbr_w: bytes


class Meta(msgspec.Struct, array_like=True):
    seq: int
    t0: bytes
    trending: bytes
    by_genre: bytes
    genre_names: list[str]
    n_items: int
    n_users: int


_encode = msgspec.msgpack.Encoder().encode
_decode_user = msgspec.msgpack.Decoder(UserEntry).decode
_decode_item = msgspec.msgpack.Decoder(ItemEntry).decode
_decode_meta = msgspec.msgpack.Decoder(Meta).decode
USER_PREFIX, ITEM_PREFIX = b"u", b"i"


def _rated(model: RecsModel, u: int) -> np.ndarray:
    chain = []
    k = int(model.users.last_log[u])
    while k != EMPTY:
        chain.append(model.shared.log_item[k])
        k = int(model.shared.log_prev[k])
    return np.asarray(chain[::-1], np.int32)


def changed_entries(model: RecsModel) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
    """The meta and an entry per user and movie changed since the last call."""
    entries: list[tuple[bytes, bytes | None]] = []
    users, items = model.users, model.items
    for u in np.flatnonzero(users.dirty[: len(model.user_ids)]).tolist():
        user = UserEntry(
            u,
            model.user_ids[u],
            int(users.seen[u]),
            users.recent[u].tobytes(),
            users.short[u].tobytes(),
            users.long[u].tobytes(),
            _rated(model, u).tobytes(),
        )
        entries.append((USER_PREFIX + str(model.user_ids[u]).encode(), _encode(user)))
    for i in np.flatnonzero(items.dirty[: len(model.item_ids)]).tolist():
        item = ItemEntry(
            i,
            model.item_ids[i],
            items.genre_list[i].tobytes(),
            float(items.n_genres[i]),
            items.pop[i].tobytes(),
            float(items.times_rated[i]),
            items.nbr_id[i].tobytes(),
            items.nbr_w[i].tobytes(),
        )
        entries.append((ITEM_PREFIX + str(model.item_ids[i]).encode(), _encode(item)))
    users.dirty[:] = False
    items.dirty[:] = False
    shared = model.shared
    meta = Meta(
        int(shared.counters[L.C_SEQ]),
        shared.t0.tobytes(),
        shared.trending.tobytes(),
        shared.by_genre.tobytes(),
        list(model.genre_names),
        len(model.item_ids),
        len(model.user_ids),
    )
    return _encode(meta), entries


def pair_capacity(pairs: int) -> int:
    """Room for ``pairs`` rated pairs at most a quarter full. The table is probed under a
    bit mask, so its size is a power of two: 4 * pairs was not, and a restored table of
    86,220 pairs could reach only some of its slots, and probing never ended (#16)."""
    return 1 << max(13, (4 * pairs - 1).bit_length())


def restored(params: np.ndarray, meta: bytes, entries: Iterable[tuple[bytes, bytes]]) -> RecsModel:
    """The model as of the meta's write; the worker then replays the events after it.
    On the embedded broker a write and its meta commit in one transaction. (At least once
    on Kafka, a write cut short by a crash can leave entries newer than its meta, which
    this app cannot trim the way the feature engine does: a known limit, see the README.)"""
    head = _decode_meta(meta)
    model = RecsModel(
        params=params,
        items=new_items(max(head.n_items, 1024)),
        users=new_users(max(head.n_users, 256)),
        genre_names=list(head.genre_names),
    )
    model.item_ids = [-1] * head.n_items
    model.user_ids = [-1] * head.n_users
    chains: dict[int, np.ndarray] = {}
    for key, value in entries:
        if key[:1] == USER_PREFIX:
            _load_user(model, _decode_user(value), chains)
        elif key[:1] == ITEM_PREFIX:
            _load_item(model, _decode_item(value))
    model.item_index = {m: i for i, m in enumerate(model.item_ids) if m != -1}
    model.user_index = {u: i for i, u in enumerate(model.user_ids) if u != -1}
    total = sum(len(c) for c in chains.values())
    model.shared = new_shared(max(4096, 2 * total), pair_capacity(total))
    _load_shared(model, head, chains)
    return model


def _load_user(model: RecsModel, e: UserEntry, chains: dict[int, np.ndarray]) -> None:
    if e.index >= len(model.user_ids):
        return  # written after the meta by a write a crash cut short: replayed
    users = model.users
    model.user_ids[e.index] = e.user
    users.seen[e.index] = e.seen
    users.recent[e.index] = np.frombuffer(e.recent, np.int32)
    users.short[e.index] = np.frombuffer(e.short, np.float32)
    users.long[e.index] = np.frombuffer(e.long, np.float32)
    chains[e.index] = np.frombuffer(e.rated, np.int32)


def _load_item(model: RecsModel, e: ItemEntry) -> None:
    if e.index >= len(model.item_ids):
        return
    items = model.items
    model.item_ids[e.index] = e.movie
    items.genre_list[e.index] = np.frombuffer(e.genre_list, np.int8)
    items.n_genres[e.index] = e.n_genres
    items.pop[e.index] = np.frombuffer(e.pop, np.float64)
    items.times_rated[e.index] = e.count
    items.nbr_id[e.index] = np.frombuffer(e.nbr_id, np.int32)
    items.nbr_w[e.index] = np.frombuffer(e.nbr_w, np.float32)
    for slot in items.genre_list[e.index, : int(e.n_genres)]:
        items.genres[e.index, slot] = 1.0


def _load_shared(model: RecsModel, head: Meta, chains: dict[int, np.ndarray]) -> None:
    shared = model.shared
    k = 0
    for u in sorted(chains):
        previous = EMPTY
        for item in chains[u]:
            shared.log_item[k] = item
            shared.log_prev[k] = previous
            previous = k
            k += 1
        model.users.last_log[u] = previous
    shared.counters[L.C_LOG] = k
    shared.counters[L.C_SEQ] = head.seq
    shared.t0[:] = np.frombuffer(head.t0, np.float64)
    shared.trending[:] = np.frombuffer(head.trending, np.int32)
    shared.by_genre[:] = np.frombuffer(head.by_genre, np.int32).reshape(shared.by_genre.shape)
    K.rebuild_pairs(tuple(shared), tuple(model.users))

"""The sweep after each micro-batch skips keys with nothing old enough to evict: it must
leave every key exactly as evicting each one with the kernel's own eviction would."""

from __future__ import annotations

import numpy as np
import pytest

from streamsense.features import kernels

Pool = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _pool(rng: np.random.Generator, keys: int) -> Pool:
    """Keys of 0-12 sorted event times each in one pool; each key's live rows start after
    0-2 rows already evicted (holding older times, as in a real pool)."""
    rows: list[int] = []
    seg_start, seg_begin, seg_len = [], [], []
    for _ in range(keys):
        evicted, n = int(rng.integers(0, 3)), int(rng.integers(0, 13))
        seg_start.append(len(rows))
        seg_begin.append(evicted)
        seg_len.append(n)
        rows += [-1] * evicted + sorted(rng.integers(0, 1_000, n).tolist())
    as_array = lambda xs: np.array(xs, np.int64)  # noqa: E731
    return as_array(rows), as_array(seg_start), as_array(seg_begin), as_array(seg_len)


def _evict_every_key(before: int, ttl_before: int, gap: int, keep: int, pool: Pool) -> None:
    """The sweep without the skip: both evictions on every key that holds rows."""
    ptime, seg_start, seg_begin, seg_len = pool
    for slot in range(len(seg_len)):
        if seg_len[slot] > 0:
            kernels.evict(slot, before, gap, keep, ptime, seg_start, seg_begin, seg_len)
            kernels.expire(slot, ttl_before, ptime, seg_start, seg_begin, seg_len)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("gap", "keep"), [(0, 0), (0, 3), (40, 0), (40, 2)])
def test_the_sweep_equals_evicting_every_key(seed: int, gap: int, keep: int) -> None:
    rng = np.random.default_rng(seed)
    pool = _pool(rng, 200)
    expected = tuple(a.copy() for a in pool)
    before = int(rng.integers(0, 1_000))
    ttl_before = before - int(rng.integers(0, 600))  # the TTL is never under the retention
    _evict_every_key(before, ttl_before, gap, keep, expected)  # type: ignore[arg-type]
    kernels.sweep(before, ttl_before, gap, keep, *pool)
    for got, want in zip(pool, expected, strict=True):
        np.testing.assert_array_equal(got, want)

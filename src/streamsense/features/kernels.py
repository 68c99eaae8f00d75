"""Compiled kernels (numba) for windowed aggregation over keyed event buffers.

Why compiled: the engine must keep up with batch SQL on one core. Per event it inserts into
its key's time-ordered buffer, finds each window's range with binary search, folds the
range, and evicts what no future window can need. Folding the range (rather than keeping
running sums) makes every value a pure function of the window's contents, so realtime,
microbatch and request-time reads agree bit for bit.

Buffer layout: one pool of (time, seq, values) rows; each key (slot) owns a segment
[start, start + cap) whose live rows are [start + begin, start + begin + length), sorted by
time then seq (log order).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

from streamsense.features.aggregations import (
    APPROX_DISTINCT,
    COUNT,
    DISTINCT,
    FIRST,
    LAST,
    MAX,
    MEAN,
    MIN,
    QUANTILE,
    QUANTILE_SCALE,
    RATE,
    STD,
    SUM,
    VAR,
)
from streamsense.features.windows import HOPPING, LAST_N, ROLLING, SESSION, TUMBLING


def jit(fn: Callable[..., Any]) -> Any:
    """Compile in nopython mode, cached on disk so only the first run pays for compiling."""
    return nb.njit(cache=True, nogil=True)(fn)


@jit
def upper(times, lo, hi, t):  # type: ignore[no-untyped-def]
    """First index in [lo, hi) whose time is > t."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if times[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def lower(times, lo, hi, t):  # type: ignore[no-untyped-def]
    """First index in [lo, hi) whose time is >= t."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if times[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def window_range(times, begin, end, t, kind, p1, p2):  # type: ignore[no-untyped-def]
    """The rows [lo, hi) of a key's buffer rows [begin, end) that the window holds at t."""
    if kind == ROLLING:
        hi = upper(times, begin, end, t - p2)
        return upper(times, begin, hi, t - p2 - p1), hi
    hi = upper(times, begin, end, t)
    if kind == TUMBLING:
        return lower(times, begin, hi, (t // p1) * p1), hi
    if kind == HOPPING:
        return lower(times, begin, hi, (t // p2) * p2 + p2 - p1), hi
    if kind == SESSION:
        if hi == begin or t - times[hi - 1] >= p1:
            return hi, hi
        lo = hi - 1
        while lo > begin and times[lo] - times[lo - 1] < p1:
            lo -= 1
        return lo, hi
    if kind == LAST_N:
        return max(begin, hi - p1), hi
    return hi, hi


@jit
def _mix(x):  # type: ignore[no-untyped-def]
    """splitmix64 finaliser: spreads a value's bits for HyperLogLog."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@jit
def _hyperloglog(values, col, lo, hi, precision):  # type: ignore[no-untyped-def]
    m = 1 << precision
    registers = np.zeros(m, np.uint8)
    for i in range(lo, hi):
        v = values[i, col]
        whole = math.floor(v)
        h = _mix(np.uint64(np.int64(whole)) ^ _mix(np.uint64(np.int64((v - whole) * 2.0**52))))
        index = np.int64(h >> np.uint64(64 - precision))
        rest = (h << np.uint64(precision)) | np.uint64(1 << (precision - 1))
        rank = 1
        while rest & np.uint64(1 << 63) == 0:
            rank += 1
            rest = rest << np.uint64(1)
        if rank > registers[index]:
            registers[index] = rank
    total = 0.0
    zeros = 0
    for r in registers:
        total += 2.0 ** -float(r)
        if r == 0:
            zeros += 1
    estimate = (0.7213 / (1.0 + 1.079 / m)) * m * m / total
    if estimate <= 2.5 * m and zeros > 0:
        estimate = m * math.log(m / zeros)  # linear counting is exact-ish for small sets
    return float(round(estimate))


@jit
def _sorted(values, col, lo, hi):  # type: ignore[no-untyped-def]
    """Rows [lo, hi) of a column, sorted. Short windows by insertion (no copy before the
    sort, and fewer steps than a quicksort below ~100 rows); long ones by numpy."""
    if hi - lo > 96:
        return np.sort(values[lo:hi, col])
    out = np.empty(hi - lo)
    for i in range(hi - lo):
        v = values[lo + i, col]
        j = i
        while j > 0 and out[j - 1] > v:
            out[j] = out[j - 1]
            j -= 1
        out[j] = v
    return out


@jit
def _quantile(ordered, q):  # type: ignore[no-untyped-def]
    """Linear interpolation between the ranks around q·(n − 1), as SQL's quantile_cont."""
    position = q * (len(ordered) - 1)
    below = int(position)  # position ≥ 0: truncation is the floor
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


@jit
def aggregate(times, values, col, lo, hi, kind, default, precision):  # type: ignore[no-untyped-def]
    """Fold rows [lo, hi) of one value column (``times``: the rows' event times, epoch
    ms); ``default`` for an empty window."""
    n = hi - lo
    if kind == COUNT:
        return float(n)
    if n == 0:
        return default
    if kind == SUM or kind == MEAN:
        total = 0.0
        for i in range(lo, hi):
            total += values[i, col]
        return total if kind == SUM else total / n
    if kind == MIN or kind == MAX:
        best = values[lo, col]
        for i in range(lo + 1, hi):
            v = values[i, col]
            if (kind == MIN and v < best) or (kind == MAX and v > best):
                best = v
        return best
    if kind == VAR or kind == STD:
        if n < 2:
            return default
        total = 0.0
        for i in range(lo, hi):
            total += values[i, col]
        centre = total / n
        squares = 0.0
        for i in range(lo, hi):
            d = values[i, col] - centre
            squares += d * d
        variance = squares / (n - 1)
        return variance if kind == VAR else math.sqrt(variance)
    if kind == DISTINCT:
        window = np.sort(values[lo:hi, col])
        distinct = 1
        for i in range(1, n):
            if window[i] != window[i - 1]:
                distinct += 1
        return float(distinct)
    if kind == APPROX_DISTINCT:
        return _hyperloglog(values, col, lo, hi, precision)
    if kind == FIRST:
        return values[lo, col]
    if kind == LAST:
        return values[hi - 1, col]
    if kind == QUANTILE:
        return _quantile(_sorted(values, col, lo, hi), precision / QUANTILE_SCALE)
    if kind == RATE:
        span = times[hi - 1] - times[lo]
        if span <= 0:
            return default
        return (values[hi - 1, col] - values[lo, col]) * 1000.0 / span
    return np.nan  # custom aggregations are folded in Python


@jit
def _move(ptime, pseq, pval, source, target):  # type: ignore[no-untyped-def]
    """Copy one pool row (element by element: numba's row-slice assignment is slow)."""
    ptime[target] = ptime[source]
    pseq[target] = pseq[source]
    for c in range(pval.shape[1]):
        pval[target, c] = pval[source, c]


@jit
def insert(slot, t, seq, rows, i, ptime, pseq, pval, seg_start, seg_cap, seg_begin, seg_len, top):  # type: ignore[no-untyped-def]
    """Insert one event into its key's buffer in (time, seq) order. Returns the number of
    pool rows wasted by moving the segment (-1: the pool is full, grow it and call again)."""
    start, cap, b, n = seg_start[slot], seg_cap[slot], seg_begin[slot], seg_len[slot]
    wasted = 0
    if b + n == cap:
        # Slide within the segment only when that frees at least half of it; otherwise a
        # key near its segment's size would slide its whole window on every few inserts.
        if b > 0 and 2 * n <= cap:
            for k in range(n):  # slide the live rows to the segment's start
                _move(ptime, pseq, pval, start + b + k, start + k)
            b = 0
        else:
            new_cap = max(4, cap * 2)
            if top[0] + new_cap > ptime.shape[0]:
                return -1
            new_start = top[0]
            top[0] += new_cap
            for k in range(n):
                _move(ptime, pseq, pval, start + b + k, new_start + k)
            wasted = cap
            start, cap, b = new_start, new_cap, 0
            seg_start[slot], seg_cap[slot] = start, cap
        seg_begin[slot] = 0
    lo = start + b
    end = lo + n
    pos = upper(ptime, lo, end, t)  # equal times keep log order: after the earlier ones
    for k in range(end, pos, -1):
        _move(ptime, pseq, pval, k - 1, k)
    ptime[pos] = t
    pseq[pos] = seq
    for c in range(pval.shape[1]):
        pval[pos, c] = rows[i, c]
    seg_len[slot] = n + 1
    return wasted


@jit
def evict(slot, before, session_gap, keep_last, ptime, seg_start, seg_begin, seg_len):  # type: ignore[no-untyped-def]
    """Drop a key's events with time < ``before``, except the ``keep_last`` newest of them
    and, for session windows, the whole session of the oldest event kept."""
    first = seg_start[slot] + seg_begin[slot]
    n = seg_len[slot]
    below = 0
    while below < n and ptime[first + below] < before:
        below += 1
    # A count window at a time past the watermark still reaches back to the last
    # ``keep_last`` events before it.
    drop = max(0, below - keep_last)
    if session_gap > 0:
        while 0 < drop < n and ptime[first + drop] - ptime[first + drop - 1] < session_gap:
            drop -= 1
    seg_begin[slot] += drop
    seg_len[slot] -= drop
    if seg_len[slot] == 0:
        seg_begin[slot] = 0


@jit
def _moments(values, col, lo, hi):  # type: ignore[no-untyped-def]
    """Sum, min and max of rows [lo, hi) (not empty) in one pass, summed in row order as
    ``aggregate`` sums them, so the values are bit for bit the same."""
    total = 0.0
    low = high = values[lo, col]
    for r in range(lo, hi):
        v = values[r, col]
        total += v
        if v < low:
            low = v
        if v > high:
            high = v
    return total, low, high


@jit
def _from_moments(values, col, lo, hi, kind, default, total, low, high):  # type: ignore[no-untyped-def]
    """``aggregate`` of a moment kind, given the window's sum, min and max."""
    n = hi - lo
    if kind == SUM:
        return total
    if kind == MEAN:
        return total / n
    if kind == MIN:
        return low
    if kind == MAX:
        return high
    if n < 2:  # VAR, STD
        return default
    centre = total / n
    squares = 0.0
    for r in range(lo, hi):
        d = values[r, col] - centre
        squares += d * d
    variance = squares / (n - 1)
    return variance if kind == VAR else math.sqrt(variance)


@jit
def fold(ptime, pval, begin, end, t, out, i, wkind, wp1, wp2, akind, acol, adefault, aprec):  # type: ignore[no-untyped-def]
    """Every feature of one key's rows [begin, end) at time ``t`` into ``out[i]``: the one
    fold the stream and request-time reads share. Features of one window and column share
    one pass for their sum, min and max, and one sort for their quantiles."""
    lo = hi = 0
    ordered = np.empty(0)  # the window's values sorted, shared by its quantiles
    sorted_col = moments_col = -1
    total = low = high = 0.0
    for f in range(wkind.shape[0]):
        # Features are grouped by window: consecutive ones share the range search.
        if f == 0 or wkind[f] != wkind[f - 1] or wp1[f] != wp1[f - 1] or wp2[f] != wp2[f - 1]:
            lo, hi = window_range(ptime, begin, end, t, wkind[f], wp1[f], wp2[f])
            sorted_col = moments_col = -1
        kind, col = akind[f], acol[f]
        if hi == lo:
            out[i, f] = aggregate(ptime, pval, col, lo, hi, kind, adefault[f], aprec[f])
        elif kind == QUANTILE:
            if sorted_col != col:
                ordered = _sorted(pval, col, lo, hi)
                sorted_col = col
            out[i, f] = _quantile(ordered, aprec[f] / QUANTILE_SCALE)
        elif (
            kind == SUM or kind == MEAN or kind == MIN or kind == MAX or kind == VAR or kind == STD
        ):
            if moments_col != col:
                total, low, high = _moments(pval, col, lo, hi)
                moments_col = col
            out[i, f] = _from_moments(pval, col, lo, hi, kind, adefault[f], total, low, high)
        else:
            out[i, f] = aggregate(ptime, pval, col, lo, hi, kind, adefault[f], aprec[f])


@jit
def process(  # type: ignore[no-untyped-def]
    slots,
    times,
    seqs,
    late,
    rows,
    out,
    first_event,
    ptime,
    pseq,
    pval,
    seg_start,
    seg_cap,
    seg_begin,
    seg_len,
    top,
    wasted,
    wkind,
    wp1,
    wp2,
    akind,
    acol,
    adefault,
    aprec,
    evict_before,
    session_gap,
    keep_last,
):
    """Insert events [first_event, n) and write each one's features (as of its own time,
    with only itself and earlier events in the buffer). Returns the index it stopped at:
    n when done, less when the pool must grow first."""
    for i in range(first_event, slots.shape[0]):
        if late[i]:
            continue
        slot = slots[i]
        moved = insert(
            slot,
            times[i],
            seqs[i],
            rows,
            i,
            ptime,
            pseq,
            pval,
            seg_start,
            seg_cap,
            seg_begin,
            seg_len,
            top,
        )
        if moved < 0:
            return i
        wasted[0] += moved
        begin = seg_start[slot] + seg_begin[slot]
        fold(
            ptime,
            pval,
            begin,
            begin + seg_len[slot],
            times[i],
            out,
            i,
            wkind,
            wp1,
            wp2,
            akind,
            acol,
            adefault,
            aprec,
        )
        evict(slot, evict_before, session_gap, keep_last, ptime, seg_start, seg_begin, seg_len)
    return slots.shape[0]


@jit
def read(  # type: ignore[no-untyped-def]
    slots,
    times,
    out,
    ptime,
    pval,
    seg_start,
    seg_begin,
    seg_len,
    wkind,
    wp1,
    wp2,
    akind,
    acol,
    adefault,
    aprec,
):
    """Features of keys (slot -1: unknown key) at arbitrary times, from everything kept."""
    for i in range(slots.shape[0]):
        slot = slots[i]
        begin = 0
        end = 0
        if slot >= 0:
            begin = seg_start[slot] + seg_begin[slot]
            end = begin + seg_len[slot]
        fold(
            ptime, pval, begin, end, times[i], out, i, wkind, wp1, wp2, akind, acol, adefault, aprec
        )


@jit
def sweep(before, ttl_before, session_gap, keep_last, ptime, seg_start, seg_begin, seg_len):  # type: ignore[no-untyped-def]
    """Evict expired events of every key (keys that saw no event lately included); past the
    TTL even count windows and open sessions let go, so memory stays bounded."""
    threshold = max(before, ttl_before)
    for slot in range(seg_len.shape[0]):
        # Most keys have nothing old enough to go: one comparison instead of the calls.
        if seg_len[slot] > 0 and ptime[seg_start[slot] + seg_begin[slot]] < threshold:
            evict(slot, before, session_gap, keep_last, ptime, seg_start, seg_begin, seg_len)
            expire(slot, ttl_before, ptime, seg_start, seg_begin, seg_len)


@jit
def expire(slot, ttl_before, ptime, seg_start, seg_begin, seg_len):  # type: ignore[no-untyped-def]
    """Drop a key's events with time < ``ttl_before``, whatever its windows (the TTL)."""
    first = seg_start[slot] + seg_begin[slot]
    drop = 0
    while drop < seg_len[slot] and ptime[first + drop] < ttl_before:
        drop += 1
    seg_begin[slot] += drop
    seg_len[slot] -= drop
    if seg_len[slot] == 0:
        seg_begin[slot] = 0


@jit
def compact(ptime, pseq, pval, seg_start, seg_cap, seg_begin, seg_len, new_time, new_seq, new_val):  # type: ignore[no-untyped-def]
    """Copy every key's live rows into fresh, tightly packed pool arrays; returns the top."""
    top = 0
    for slot in range(seg_len.shape[0]):
        n = seg_len[slot]
        cap = 0 if n == 0 else max(4, n + (n >> 1))
        old = seg_start[slot] + seg_begin[slot]
        for k in range(n):
            new_time[top + k] = ptime[old + k]
            new_seq[top + k] = pseq[old + k]
            new_val[top + k] = pval[old + k]
        seg_start[slot] = top
        seg_cap[slot] = cap
        seg_begin[slot] = 0
        top += cap
    return top

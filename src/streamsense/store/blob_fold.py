"""Request-time folds straight from online-store blobs (compiled).

A view's blob is 8-byte words: a header word (rows | columns << 32), the rows' times, then
the values row by row (see views.encode_rows). Reading 100 keys used to gather every blob
into pool-shaped arrays with numpy fancy indexing before folding; this kernel walks the
joined blobs in place and hands each key's rows to the engine's own ``kernels.fold``, so a
read is one pass and the values are the stream's, bit for bit.
"""

from __future__ import annotations

import numpy as np

from streamsense.features.kernels import fold, jit, upper


@jit
def fold_blobs(  # type: ignore[no-untyped-def]
    words,
    values,
    sizes,
    present,
    times,
    events,
    with_events,
    out,
    wkind,
    wp1,
    wp2,
    akind,
    acol,
    adefault,
    aprec,
):
    """Every feature of each key i at ``times[i]`` into ``out[i]``.

    ``words``/``values``: the present keys' blobs joined (as int64 and as float64);
    ``sizes``: each present blob's length in words; ``present[i]``: key i has a blob (the
    others fold an empty window). ``with_events``: key i's window also holds ``events[i]``
    at ``times[i]``, after its stored rows of the same time (as the stream would insert
    it). Returns -1, or the index of the first key whose blob is malformed (nothing is read
    outside ``words``)."""
    width = events.shape[1]
    pos = 0
    blob = 0
    for i in range(present.shape[0]):
        rows = 0
        first = pos + 1
        if present[i]:
            size = sizes[blob]
            blob += 1
            if size < 1 or pos + size > words.shape[0]:
                return i
            rows = words[pos] & 0xFFFFFFFF
            if words[pos] >> 32 != width or 1 + rows + rows * width != size:
                return i
            pos += size
        t = times[i]
        ptime = words[first : first + rows]
        pval = values[first + rows : first + rows + rows * width].reshape((rows, width))
        if with_events:
            at = upper(ptime, 0, rows, t)
            merged_time = np.empty(rows + 1, np.int64)
            merged_val = np.empty((rows + 1, width), np.float64)
            merged_time[:at] = ptime[:at]
            merged_time[at] = t
            merged_time[at + 1 :] = ptime[at:]
            merged_val[:at] = pval[:at]
            merged_val[at] = events[i]
            merged_val[at + 1 :] = pval[at:]
            fold(
                merged_time,
                merged_val,
                0,
                rows + 1,
                t,
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
        else:
            fold(ptime, pval, 0, rows, t, out, i, wkind, wp1, wp2, akind, acol, adefault, aprec)
    return -1

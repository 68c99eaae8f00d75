"""A full or failing disk under the SQLite files streamsense writes (the embedded broker's
log, the online store): one write transaction that always ends committed or rolled back,
and the disk's errors as one retryable ``StorageFull`` / ``StorageFault`` naming the file.

SQLite reports a full disk as ``SQLITE_FULL`` ("database or disk is full") from a statement
or from the COMMIT that writes the WAL; either may or may not have rolled the transaction
back already (sqlite.org/lang_transaction.html). Left open, a transaction holds the write
lock and the next BEGIN fails for ever, so every failure ends in a ROLLBACK when one is
still open: the file keeps exactly what the last successful commit wrote.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streamsense.errors import StorageFault, StorageFull, StreamsenseError

__all__ = ["RERUN", "disk_faults", "storage_fault", "write_transaction"]

_SQLITE_FULL = 13
_SQLITE_IOERR = 10
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# The same advice for every fault: what the failed write left, and how to go on.
RERUN = "run the command again (a replay or a worker resumes from its last commit)"
_ROLLED_BACK = "the transaction was rolled back; "


def storage_fault(error: BaseException, path: str) -> StorageFault | None:
    """The fault ``error`` means for the file ``path``; None when it is no disk fault."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF  # extended codes keep it low
        if primary == _SQLITE_FULL or "database or disk is full" in str(error):
            return StorageFull(_full_message(path, str(error), _ROLLED_BACK), where=path)
        if primary == _SQLITE_IOERR:
            return _io_fault(path, str(error), _ROLLED_BACK)
        return None
    if isinstance(error, OSError):
        if error.errno in _FULL_ERRNOS:
            detail = os.strerror(error.errno)
            return StorageFull(_full_message(path, detail, ""), where=path)
        if error.errno == errno.EIO:
            return _io_fault(path, os.strerror(error.errno), "")
    return None


def _full_message(path: str, detail: str, rolled_back: str) -> str:
    """Says which file found no room, how much its filesystem has left and what to do."""
    mount = _mount_point(Path(path))
    try:
        free = _size(shutil.disk_usage(mount).free)
    except OSError:
        free = "unknown space"
    return (
        f"disk full: cannot write {path} ({detail}; {free} free on {mount}): {rolled_back}"
        f"free space on {mount} and {RERUN}"
    )


def _io_fault(path: str, detail: str, rolled_back: str) -> StorageFault:
    message = f"I/O error writing {path} ({detail}): {rolled_back}check the disk and {RERUN}"
    return StorageFault(message, where=path)


def _mount_point(path: Path) -> Path:
    here = path.parent if not path.is_dir() else path
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@contextmanager
def disk_faults(path: str) -> Iterator[None]:
    """Raises a disk fault inside as the StorageFault it means for ``path``; other errors
    go through unchanged."""
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        fault = storage_fault(error, path)
        if fault is None:
            raise
        raise fault from error


@contextmanager
def write_transaction(
    conn: sqlite3.Connection,
    path: str,
    busy: Callable[[sqlite3.OperationalError], StreamsenseError],
) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn`` (autocommit mode): committed when the block ends,
    rolled back whole when the block or the COMMIT fails. BEGIN IMMEDIATE takes the write
    lock up front (writers in other processes wait their busy timeout); failing that,
    ``busy`` makes the error to raise."""
    with disk_faults(path):
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if storage_fault(error, path) is not None:
                raise
            raise busy(error) from error
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                # SQLite may have rolled back already; a second rollback's error is moot.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

"""Time limits that librdkafka does not always keep, enforced from outside.

Some blocking librdkafka calls can outlive the timeout they are given: after a broker
restart, ``send_offsets_to_transaction`` was seen blocked for minutes past its timeout
(librdkafka never checks the deadline of its coordinator requests). ``call_within`` runs
such a call on a daemon thread and stops waiting for it at the limit. The call itself
cannot be cancelled, so the client it was made on must be abandoned (``StuckCall``).

The usual cause (librdkafka 2.16, its issues #5456 and #5511): a broker that drops out of
a metadata response while it restarts is decommissioned, but stays cached as a group or
transaction coordinator, and requests through that cache wait for it forever. A new
client has no such cache, hence ``abandon``: hand the old client to a daemon thread that
destroys it once nothing uses it (destroying may block too, so never on the caller's).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from streamsense.errors import BrokerUnavailable

log = logging.getLogger("streamsense.brokers.kafka")

T = TypeVar("T")

# librdkafka is given the limit itself and usually reports its own timeout, a clearer
# error than ours: wait this much longer before giving up on the call.
GRACE_S = 1.0
# Limits of the calls that librdkafka gives no timeout of its own: a consumer's
# synchronous commit, closing a consumer (it leaves the group, which runs the revocation
# callback and its final commit) or a producer. A producer's flush has a timeout of its
# own, which it keeps (it is a loop of polls).
COMMIT_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 60.0


class StuckCall(BrokerUnavailable):
    """A client call did not return within its limit. It may still be running (on
    ``thread``), so the client must not be used again: ``abandon`` it, make a new one."""

    def __init__(self, message: str, thread: threading.Thread | None = None) -> None:
        super().__init__(message)
        self.thread = thread


class _Call(Generic[T]):
    """One call on its own daemon thread (a stuck call must not keep the process alive)."""

    def __init__(self, call: Callable[[], T]) -> None:
        self.thread: threading.Thread | None = None
        self._call: Callable[[], T] | None = call
        self._done = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        call, self._call = self._call, None  # the thread keeps the client until it returns
        assert call is not None
        try:
            self._result = call()
        except BaseException as error:  # handed to the waiting thread
            self._error = error
        finally:
            self._done.set()

    def wait(self, limit_s: float, what: str) -> T:
        if not self._done.wait(limit_s):
            raise StuckCall(f"{what}: no answer within {limit_s:.1f} s", self.thread)
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set when no error was raised


def call_within(call: Callable[[], T], limit_s: float, what: str) -> T:
    """``call()``, or StuckCall if it has not returned after ``limit_s`` plus a grace.
    Its own exceptions (KafkaException) are raised unchanged."""
    running = _Call(call)
    running.thread = threading.Thread(target=running.run, name=f"kafka: {what}", daemon=True)
    running.thread.start()
    return running.wait(limit_s + GRACE_S, what)


def close_within(
    client: object, close: Callable[[], object], limit_s: float, what: str
) -> threading.Thread | None:
    """``close()`` within ``limit_s``. If it does not return in time, the client goes on
    closing on the call's own thread and is dropped once that returns (the thread doing it
    is returned; None when the close finished). Its own exceptions (KafkaException) are
    raised unchanged."""
    try:
        call_within(close, limit_s, what)
    except StuckCall as stuck:
        log.warning("%s; it goes on closing in the background", stuck)
        return abandon(client, lambda: None, stuck)
    return None


def abandon(
    client: object, destroy: Callable[[], object], busy: StuckCall | None = None
) -> threading.Thread:
    """Destroy ``client`` on a daemon thread, after the call stuck in it (``busy``) has
    returned: destroying a client while another thread is inside it is not safe. If that
    call never returns, the client is never destroyed (a leak, rather than a crash).
    ``destroy`` must leave nothing for garbage collection to destroy again (a producer's
    ``close``); without one, dropping the last reference destroys the client. Returns the
    thread that does it."""
    holder = [client]  # keeps it alive, so the last reference drops on the reaper thread
    stuck = busy.thread if busy is not None else None

    def reap() -> None:
        if stuck is not None:
            stuck.join()
        try:
            destroy()
        except Exception as error:  # it failed already; only freeing it is left
            log.debug("destroying an abandoned kafka client: %s", error)
        holder.clear()

    reaper = threading.Thread(target=reap, name="kafka: abandoned client", daemon=True)
    reaper.start()
    return reaper

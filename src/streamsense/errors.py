"""One root exception for the whole package.

Every error says whether retrying the same call can help (``retryable``), so callers and
the resilience layer can decide without parsing messages.
"""

from __future__ import annotations


class StreamsenseError(Exception):
    """Root of every error raised by streamsense."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class RetryableError(StreamsenseError):
    """A transient failure: the same call may succeed later (timeouts, busy broker)."""

    retryable = True


class FatalError(StreamsenseError):
    """A permanent failure: retrying the same call cannot help."""

    retryable = False


class ConfigError(FatalError):
    """Invalid configuration or arguments (bad URL, unknown topic, wrong partition count)."""


class MissingExtra(ConfigError):
    """An optional dependency is not installed; the message names the extra to install."""


class InputFileError(ConfigError):
    """An input file that cannot be read as asked (corrupt, wrong format, missing or
    mistyped columns): the message names the file and what is wrong."""


class TopicNotFound(ConfigError):
    """The named topic does not exist."""


class BrokerUnavailable(RetryableError):
    """The broker could not be reached or is busy."""


class StorageFault(RetryableError):
    """A disk or store failed a write (an I/O error). What the last commit left is intact
    (a SQLite transaction is rolled back whole); running the command again once the cause
    is fixed resumes from there. Retryable, but a worker stops on it rather than pausing
    and retrying: unlike a busy lock or a restarting server it seldom clears by itself (see
    docs/reliability.md, "Disk full and I/O faults"). ``where`` names the file or store."""

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message)
        self.where = where


class StorageFull(StorageFault):
    """A write found no room: a full disk (SQLite's "database or disk is full", ENOSPC) or
    a store at its memory limit (Redis's OOM under ``maxmemory-policy noeviction``)."""


class FencedError(FatalError):
    """Another worker committed these offsets first; this worker's view of the partition is
    stale. The worker must drop its state for the partition and rejoin: retrying the same
    commit can never succeed."""


class InvalidEvent(FatalError):
    """An input record that cannot become an event. Carries where it came from and why, so it
    can go to the dead-letter topic with its original bytes."""

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = f" (field {field!r})" if field else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.field = field
        self.topic = topic
        self.partition = partition
        self.offset = offset


class CircuitOpen(RetryableError):
    """A circuit breaker rejected the call without making it: the stage behind it has been
    failing or slow. Retrying helps later (after ``retry_after`` seconds), not at once."""

    def __init__(self, breaker: str, *, retry_after: float | None = None) -> None:
        later = f"; retry in {retry_after:.3f} s" if retry_after is not None else ""
        super().__init__(f"circuit {breaker!r} is open{later}")
        self.breaker = breaker
        self.retry_after = retry_after


class StageTimeout(RetryableError):
    """A stage did not answer within its timeout; the call was cancelled."""

    def __init__(self, stage: str, timeout: float) -> None:
        super().__init__(f"stage {stage!r} did not answer within {timeout:.3f} s")
        self.stage = stage
        self.timeout = timeout

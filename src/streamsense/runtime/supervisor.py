"""The supervisor: runs an app's workers as child processes and scales them by lag.

Each worker is a separate OS process (``streamsense run <app> --workers 1``) that joins the
app's consumer group; adding or removing one is a rebalance, which already moves partitions
and keyed state exactly once. The supervisor itself never touches records: every check it
reaps exited children, restarts the ones that died (with backoff), measures the group's lag
and lets the ScalePolicy pick the worker count. A removed worker gets SIGTERM, so it
commits and leaves the group (SIGKILL only after ``stop_timeout_s``).

Why processes started by command and not ``multiprocessing``: a child is exactly the worker
a user runs by hand (same code path, signals, exit codes), it shares nothing with the
supervisor (no inherited broker connections or numba state), a crash in native code takes
down only that child, and it runs in its own session so a terminal's Ctrl-C reaches the
supervisor alone, which then stops the children in order.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import StreamsenseError
from streamsense.observability.metrics import Metrics
from streamsense.runtime.lag import GroupLag
from streamsense.runtime.scale_policy import RestartBackoff, ScalePolicy

log = logging.getLogger(__name__)


class ChildProcess(Protocol):
    """What the supervisor needs of a process (``subprocess.Popen`` is one)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


Launcher = Callable[[int], ChildProcess]  # slot number → a started worker process


def command_launcher(
    argv: Callable[[int], Sequence[str]], env: dict[str, str] | None = None
) -> Launcher:
    """Starts ``argv(slot)`` (a ``streamsense run ... --workers 1`` command) per worker, in
    a session of its own; output goes where the supervisor's goes."""

    def launch(slot: int) -> ChildProcess:
        return subprocess.Popen(list(argv(slot)), env=env, start_new_session=True)

    return launch


@dataclass
class SupervisorStatus:
    """What the supervisor reports after every check (logs, status file, metrics)."""

    workers: int = 0  # wanted
    running: int = 0  # alive, including ones still starting
    stopping: int = 0  # told to leave, not exited yet
    lag: int | None = None
    scale_ups: int = 0
    scale_downs: int = 0
    restarts: int = 0
    deaths: int = 0
    most_workers: int = 0
    events: list[str] = field(default_factory=list)  # the latest few, newest last


@dataclass
class _Slot:
    number: int
    process: ChildProcess | None = None  # None: waiting for its restart


class Supervisor:
    """Keeps ``policy``'s worker count of children running until ``stop()``."""

    def __init__(
        self,
        launcher: Launcher,
        measure_lag: Callable[[], GroupLag],
        policy: ScalePolicy,
        restarts: RestartBackoff,
        *,
        clock: Clock = SYSTEM_CLOCK,
        check_every_s: float = 2.0,
        stop_timeout_s: float = 30.0,
        report: Callable[[SupervisorStatus, GroupLag | None], None] | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self._launch = launcher
        self._measure_lag = measure_lag
        self.policy = policy
        self._restarts = restarts
        self._clock = clock
        self._check_every_s = check_every_s
        self._stop_timeout_s = stop_timeout_s
        self._report = report
        self._announce = announce
        self._slots: list[_Slot] = []
        self._leaving: list[tuple[ChildProcess, float]] = []  # (process, kill deadline)
        self._next_slot = 0
        self._stop = threading.Event()
        self.status = SupervisorStatus()

    def stop(self) -> None:
        """Ask ``run`` to stop every worker (SIGTERM: commit and leave) and return."""
        self._stop.set()

    def run(self) -> SupervisorStatus:
        try:
            while not self._stop.is_set():
                self.check()
                self._pause()
        finally:
            self._shutdown()
        return self.status

    def check(self) -> None:
        """One round: reap, restart, measure, scale, report."""
        self._reap()
        self._restart_due()
        lag = self._lag()
        if lag is not None or not self._slots:  # start the minimum even without a lag
            decision = self.policy.decide(lag.total if lag else 0, len(self._slots))
            if decision is not None:
                self._scale(decision.target, decision.reason)
        self._update_status(lag)

    # -- children ---------------------------------------------------------------------------
    def _start(self, slot: _Slot) -> ChildProcess:
        process = slot.process = self._launch(slot.number)
        log.info("worker %d started (pid %d)", slot.number, process.pid)
        return process

    def _scale(self, target: int, reason: str) -> None:
        before = len(self._slots)
        while len(self._slots) < target:
            slot = _Slot(self._next_slot)
            self._next_slot += 1
            self._start(slot)
            self._restarts.started(slot.number)
            self._slots.append(slot)
        while len(self._slots) > target:
            self._retire(self._slots.pop())
        if target > before:
            self.status.scale_ups += 1
        elif target < before:
            self.status.scale_downs += 1
        direction = "up" if target > before else "down"
        self._event(f"scale {direction}: {before} → {target} workers ({reason})")

    def _retire(self, slot: _Slot) -> None:
        self._restarts.forget(slot.number)
        if slot.process is None or slot.process.poll() is not None:
            return
        slot.process.send_signal(signal.SIGTERM)
        self._leaving.append((slot.process, self._clock.monotonic() + self._stop_timeout_s))

    def _reap(self) -> None:
        for slot in self._slots:
            code = slot.process.poll() if slot.process is not None else None
            if slot.process is None or code is None:
                continue
            delay = self._restarts.died(slot.number)
            slot.process = None
            self.status.deaths += 1
            self._event(
                f"worker {slot.number} exited unexpectedly (code {code}); "
                f"restarting in {delay:.1f} s"
            )
        still = []
        for process, deadline in self._leaving:
            if process.poll() is not None:
                log.info("worker pid %d left (code %s)", process.pid, process.poll())
            elif self._clock.monotonic() >= deadline:
                log.warning("worker pid %d did not leave in time: killing it", process.pid)
                process.kill()
                still.append((process, float("inf")))  # until it is gone
            else:
                still.append((process, deadline))
        self._leaving = still

    def _restart_due(self) -> None:
        for slot in self._slots:
            if slot.process is None and self._restarts.ready(slot.number):
                process = self._start(slot)
                self._restarts.restarted(slot.number)
                self._event(f"worker {slot.number} restarted (pid {process.pid})")

    def _shutdown(self) -> None:
        """SIGTERM every child, wait for all of them (SIGKILL after the timeout)."""
        while self._slots:
            self._retire(self._slots.pop())
        while self._leaving:
            self._reap()
            if self._leaving:
                self._clock.sleep(0.05)
        self._update_status(None)
        self._event("every worker stopped")

    # -- measuring and reporting ------------------------------------------------------------
    def _lag(self) -> GroupLag | None:
        try:
            return self._measure_lag()
        except StreamsenseError as error:  # a busy or restarting broker: skip this round
            log.warning("could not measure the lag: %s", error)
            return None

    def _update_status(self, lag: GroupLag | None) -> None:
        status = self.status
        status.workers = len(self._slots)
        status.running = sum(
            1 for s in self._slots if s.process is not None and s.process.poll() is None
        )
        status.stopping = len(self._leaving)
        status.lag = lag.total if lag is not None else status.lag
        status.restarts = self._restarts.restarts
        status.most_workers = max(status.most_workers, status.workers)
        if self._report is not None:
            self._report(status, lag)

    def _event(self, message: str) -> None:
        log.info("%s", message)
        self.status.events = [*self.status.events[-19:], message]
        if self._announce is not None:
            self._announce(message)

    def _pause(self) -> None:
        # Short sleeps, so stop() (from a signal handler) takes effect within 50 ms.
        until = self._clock.monotonic() + self._check_every_s
        while not self._stop.is_set() and self._clock.monotonic() < until:
            self._clock.sleep(min(0.05, until - self._clock.monotonic()))


class SupervisorMetrics:
    """The supervisor's gauges beside the group's lag, in one Prometheus registry."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        from prometheus_client import Gauge

        self.metrics = metrics or Metrics()
        registry = self.metrics.registry
        self._gauges = {
            name: Gauge(f"streamsense_supervisor_{name}", help, registry=registry)
            for name, help in (
                ("workers", "Worker processes wanted."),
                ("workers_running", "Worker processes alive."),
                ("scale_ups", "Times a worker was added for lag."),
                ("scale_downs", "Times a worker was removed for idleness."),
                ("restarts", "Workers restarted after dying."),
            )
        }

    def observe(self, status: SupervisorStatus, lag: GroupLag | None) -> None:
        values = {
            "workers": status.workers,
            "workers_running": status.running,
            "scale_ups": status.scale_ups,
            "scale_downs": status.scale_downs,
            "restarts": status.restarts,
        }
        for name, value in values.items():
            self._gauges[name].set(value)
        if lag is not None:
            self.metrics.observe_lag(lag)

    def render(self) -> bytes:
        return self.metrics.render()

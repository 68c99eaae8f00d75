"""The supervisor's process handling with real (tiny) child processes and a manual clock:
start the minimum, follow the policy, restart a dead child after its backoff, SIGTERM a
removed one, SIGKILL one that ignores SIGTERM past the timeout, skip failed lag checks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

from streamsense.errors import BrokerUnavailable
from streamsense.runtime.lag import GroupLag, PartitionLag
from streamsense.runtime.scale_policy import (
    RestartBackoff,
    RestartConfig,
    ScaleConfig,
    ScalePolicy,
)
from streamsense.runtime.supervisor import ChildProcess, Supervisor, SupervisorMetrics
from streamsense.testing import ManualClock

SLEEPER = "import time; time.sleep(60)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"  # noqa: E501


class Children:
    """Starts real Python processes running ``programs[slot]`` (default: a sleeper)."""

    def __init__(self, programs: dict[int, list[str]] | None = None) -> None:
        self.programs = programs or {}
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, slot: int) -> ChildProcess:
        queue = self.programs.get(slot, [])
        program = queue.pop(0) if queue else SLEEPER
        process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE)
        if program == STUBBORN:
            assert process.stdout is not None
            process.stdout.readline()  # its SIGTERM handler is in place
        self.started.append(process)
        return process

    def alive(self) -> int:
        return sum(1 for p in self.started if p.poll() is None)

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(10)


class SteppingClock(ManualClock):
    """Manual time that also really waits when the supervisor sleeps (children need it)."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
        super().sleep(seconds)


def _lag(total: int) -> GroupLag:
    return GroupLag("g", (PartitionLag("t", 0, 0, 0, total),))


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _supervisor(
    children: Children, lags: list[int | None], clock: ManualClock, **config: float
) -> Supervisor:
    def measure() -> GroupLag:
        lag = lags.pop(0) if len(lags) > 1 else lags[0]
        if lag is None:
            raise BrokerUnavailable("busy")
        return _lag(lag)

    scale = ScaleConfig(
        min_workers=1, max_workers=3, scale_up_lag=100, scale_up_after_s=0, cooldown_s=1
    )
    return Supervisor(
        children,
        measure,
        ScalePolicy(scale, clock),
        RestartBackoff(RestartConfig(initial_s=2.0), clock),
        clock=clock,
        stop_timeout_s=config.get("stop_timeout_s", 30.0),
    )


def test_follows_the_policy_and_stops_every_child() -> None:
    clock, children = SteppingClock(), Children()
    supervisor = _supervisor(children, [500, 500, None, 500, 0], clock)
    metrics = SupervisorMetrics()
    try:
        supervisor.check()  # starts the minimum
        assert supervisor.status.workers == 1 and children.alive() == 1
        clock.advance(1000)
        supervisor.check()
        assert supervisor.status.workers == 2 and children.alive() == 2
        clock.advance(1000)
        supervisor.check()  # the lag could not be measured: no change
        assert supervisor.status.workers == 2
        clock.advance(1000)
        supervisor.check()
        assert supervisor.status.workers == 3 and supervisor.status.scale_ups == 3
        metrics.observe(supervisor.status, _lag(500))
        assert b"streamsense_supervisor_workers 3.0" in metrics.render()
        supervisor.stop()
        status = supervisor.run()  # stop() first: run only shuts down
        assert status.workers == 0 and children.alive() == 0
        assert [p.returncode for p in children.started] == [-signal.SIGTERM] * 3  # no SIGKILL
        assert status.events[-1] == "every worker stopped"
    finally:
        children.cleanup()


def test_a_dead_child_is_restarted_after_its_backoff() -> None:
    clock = ManualClock()
    children = Children({0: ["import sys; sys.exit(3)"]})
    supervisor = _supervisor(children, [0], clock)
    try:
        supervisor.check()
        first = children.started[0]
        _until(lambda: first.poll() is not None)
        supervisor.check()
        assert supervisor.status.deaths == 1 and supervisor.status.running == 0
        assert "exited unexpectedly (code 3)" in supervisor.status.events[-1]
        clock.advance(1999)
        supervisor.check()
        assert len(children.started) == 1  # still backing off
        clock.advance(1)
        supervisor.check()
        assert len(children.started) == 2 and supervisor.status.restarts == 1
        assert supervisor.status.running == 1
    finally:
        children.cleanup()


def test_a_removed_child_gets_sigterm_and_sigkill_after_the_timeout() -> None:
    clock = ManualClock()
    children = Children({1: [STUBBORN]})
    supervisor = _supervisor(children, [500, 500, 0], clock, stop_timeout_s=5.0)
    try:
        supervisor.check()
        clock.advance(1000)
        supervisor.check()
        stubborn = children.started[1]
        supervisor.check()  # idle from now on; the default idle period is 60 s
        clock.advance(60_000)
        supervisor.check()
        assert supervisor.status.workers == 1 and supervisor.status.stopping == 1
        time.sleep(0.3)
        assert stubborn.poll() is None  # SIGTERM ignored
        clock.advance(5000)
        supervisor.check()  # past the timeout: killed
        _until(lambda: stubborn.poll() is not None)
        assert stubborn.returncode < 0
        supervisor.check()
        assert supervisor.status.stopping == 0 and supervisor.status.deaths == 0
    finally:
        children.cleanup()

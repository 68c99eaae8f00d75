"""Real servers for tests (Kafka, Redis), run by the project's own scripts.

One server per session, shared by every fixture that needs it: started on first use, stopped
at the end only if this session started it. If it cannot start, the tests that need it fail
(they are never skipped): a green run always means the server was exercised."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


class ScriptServer:
    def __init__(
        self,
        script: str,
        *,
        start_timeout_s: float,
        stop_timeout_s: float,
        env: dict[str, str] | None = None,
        fresh: bool = False,
    ) -> None:
        """``env``: extra environment for the script (another port and run directory give
        a private server, for a test that must not share one). ``fresh``: stop a server
        left running (by an interrupted run) first, so the test starts on an empty one."""
        self.script = SCRIPTS / script
        self.env = None if env is None else {**os.environ, **env}
        self.fresh = fresh
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.address: str | None = None
        self.started_here = False
        self.users = 0

    def acquire(self) -> str:
        """The server's address (the last line ``start`` prints)."""
        if self.address is None:
            if self.fresh:
                subprocess.run(
                    [self.script, "stop"],
                    capture_output=True,
                    timeout=self.stop_timeout_s,
                    env=self.env,
                )
            status = subprocess.run(
                [self.script, "status"], capture_output=True, timeout=30, env=self.env
            )
            self.address = self._start()
            self.started_here = status.returncode != 0
        self.users += 1
        return self.address

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.started_here:
            subprocess.run(
                [self.script, "stop"],
                capture_output=True,
                timeout=self.stop_timeout_s,
                env=self.env,
            )
            self.address, self.started_here = None, False

    def _start(self) -> str:
        name = f"scripts/{self.script.name} start"
        try:
            result = subprocess.run(
                [self.script, "start"],
                capture_output=True,
                text=True,
                timeout=self.start_timeout_s,
                env=self.env,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} took over {self.start_timeout_s}s", pytrace=False)
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines:
            pytest.fail(f"{name} failed:\n{result.stderr[-3000:]}", pytrace=False)
        return lines[-1]

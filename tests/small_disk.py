"""A small filesystem for disk-full tests: a tmpfs the test mounts, grows to free space,
and unmounts however the test ends. A tmpfs fills like a disk (writes fail with ENOSPC),
needs no image file or loop device, and goes away with its contents.

Mounting needs root, as the tests and CI run here; without it the test fails saying so."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size: str) -> None:
        """Grow (or shrink) the filesystem in place: its files stay."""
        _mount("-o", f"remount,size={size}", str(self.path))

    @property
    def free(self) -> int:
        return shutil.disk_usage(self.path).free

    @property
    def used(self) -> int:
        return shutil.disk_usage(self.path).used


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[SmallDisk]:
    """A tmpfs of ``size`` (mount's syntax: 8m, 512k) at ``path``, unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield SmallDisk(path)
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True, text=True)
        if done.returncode != 0:  # a file still open (a process the test left): detach
            subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(
            f"mount {' '.join(args)} failed (disk-full tests mount a tmpfs: they need root): "
            f"{done.stderr.strip()}",
            pytrace=False,
        )

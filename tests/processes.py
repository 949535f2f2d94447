"""Finding a test's processes by a marker in their argv or environment (a /proc scan), with deadlines.

Tests that check "nothing of ours is left" give every process they cause a unique marker, then look
for it in `/proc/<pid>/cmdline` and `/proc/<pid>/environ` of every live (not zombie) process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def new_marker() -> str:
    return f"cs-marker-{uuid.uuid4().hex}"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def carrying(marker: str) -> dict[int, str]:
    """Live processes whose argv or environment contains `marker`: pid -> command line."""
    needle = marker.encode()
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        stat = _read(f"/proc/{name}/stat")
        if not stat or stat.rsplit(b")", 1)[1].split()[0] == b"Z":
            continue
        cmdline = _read(f"/proc/{name}/cmdline")
        if needle in cmdline or needle in _read(f"/proc/{name}/environ"):
            found[int(name)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


def wait_none_carrying(marker: str, timeout: float) -> None:
    """Return once no process carries `marker`; fail listing the survivors after `timeout`."""
    deadline = time.monotonic() + timeout
    while left := carrying(marker):
        assert time.monotonic() < deadline, f"still running after {timeout:g} s: {left}"
        time.sleep(0.05)


def kill_carrying(marker: str) -> None:
    """Cleanup for a failed test: SIGKILL whatever still carries the marker."""
    for pid in carrying(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

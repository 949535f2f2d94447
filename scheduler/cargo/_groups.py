"""The process sessions we start, killed whole, and found again after a crash (standard library only).

Every child the daemon starts (cargo, rust-analyzer, a short probe) leads a session of its own
(setsid). Its descendants stay in that session unless they call setsid themselves, which cargo,
rustc, build scripts, test binaries, rust-analyzer and its proc-macro server do not. They may make
process groups of their own (rust-analyzer runs flycheck's cargo under `setpgid`), so the unit we
kill is the *session*: `kill_session` sends SIGKILL to the leader's group and then to every process
whose `/proc/<pid>/stat` names the leader as its session, until none is left.

A session outlives a daemon killed with SIGKILL. So the daemon writes each session it starts into a
record next to its pid file (`Record`: the leader's pid and its start time in clock ticks since
boot) and crosses it out once the session is gone; the next daemon for the workspace and
`cargo-scheduler daemon stop` call `sweep`, which kills what a dead daemon left. A recorded session
is trusted before it is signalled: its leader, if alive, must have the recorded start time (else
the pid was reused, which the kernel allows only once the whole session is gone); members of a
session whose leader is gone must belong to our uid and have started no earlier than the leader.

Not PR_SET_PDEATHSIG: anyio cannot run code between fork and exec, the signal would reach only the
direct child (cargo dies, its build scripts are reparented and run on), and it fires when the
*thread* that spawned the child exits, not the process. The record covers the same case for the
whole tree. Imported by the stdlib-only client side (`daemon stop`), so nothing heavy here.
"""

from __future__ import annotations

import contextlib
import os
import signal

Session = tuple[int, int]
"""(leader pid, leader start time in clock ticks since boot): one session we started."""

_ROUNDS = 20
"""Bound on kill-and-rescan rounds: a process may fork between a scan and our SIGKILL."""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, session id, start time) of a live process, from /proc/<pid>/stat; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After the command: state(3) ppid(4) pgrp(5) session(6) ... starttime(22), numbered from 1.
    return fields[0].decode(), int(fields[3]), int(fields[19])


def start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[2] if stat is not None else None


def members(leader: int, since: int = 0) -> list[int]:
    """Live (not zombie) processes of our uid in the session `leader` leads, started at `since` or later."""
    uid = os.getuid()
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _stat(int(entry.name))
            if stat is None or stat[1] != leader or stat[0] == "Z" or stat[2] < since:
                continue
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
    return found


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_session(leader: int, since: int = 0) -> list[int]:
    """SIGKILL the leader's group, then every other process left in its session; the pids signalled
    one by one (those outside the leader's group).

    Only for a session we know is ours: a child we have not reaped yet, or one `sweep` verified."""
    found: list[int] = []
    signal_group(leader, signal.SIGKILL)
    for _ in range(_ROUNDS):
        left = [pid for pid in members(leader, since) if pid != leader]
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        found += [pid for pid in left if pid not in found]
    return found


def is_ours(session: Session) -> bool:
    """Whether a recorded session may be signalled: its leader unchanged, or gone and not reused."""
    leader, started = session
    stat = _stat(leader)
    if stat is None or stat[0] == "Z":
        return True  # members() still filters by uid and start time
    return stat[2] == started and stat[1] == leader


def sweep(path: str) -> list[int]:
    """Kill every recorded session a dead daemon left, then empty the record; the pids signalled.

    Call only while no daemon owns the record (holding the workspace's lifetime lock, or having
    seen it free)."""
    killed: list[int] = []
    for session in Record(path).load():
        if is_ours(session):
            killed += members(*session)
            kill_session(*session)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return killed


class Record:
    """An append-only file of `+ pid start` / `- pid start` lines: the sessions a daemon has open.

    One small `O_APPEND` write per line, so a crash leaves at worst a torn last line (ignored)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _write(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def add(self, session: Session) -> None:
        self._write(f"+ {session[0]} {session[1]}\n")

    def remove(self, session: Session) -> None:
        self._write(f"- {session[0]} {session[1]}\n")

    def load(self) -> set[Session]:
        try:
            with open(self.path, encoding="ascii", errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return set()
        open_: set[Session] = set()
        for line in lines:
            parts = line.split()
            if len(parts) != 3 or parts[0] not in "+-" or not (parts[1].isdigit() and parts[2].isdigit()):
                continue
            session = (int(parts[1]), int(parts[2]))
            if parts[0] == "+":
                open_.add(session)
            else:
                open_.discard(session)
        return open_

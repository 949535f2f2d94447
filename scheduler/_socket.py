"""Where a workspace's daemon lives and who may talk to it; shared by the front and the daemon.

Standard library only and cheap to import: the stdio front (`_front.py`) imports this module on its
background thread, so nothing here may pull in anyio, pathlib-heavy code or the MCP SDK.

One daemon per (user, workspace root). Its socket sits in a directory only that user can enter
(`$XDG_RUNTIME_DIR/cargo-scheduler/`, else `/tmp/cargo-scheduler-<uid>/`, mode 0700, checked to be a
real directory owned by the uid, because `/tmp` is shared and a planted symlink or directory would
let another user intercept every call). The file names come from a hash of the resolved root, so two
spellings of one workspace share a daemon and two worktrees never do.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

PROTOCOL = 1
"""Version of the front<->daemon line protocol (the control lines); bump on incompatible change."""

IDLE_TIMEOUT_ENV = "CARGO_SCHEDULER_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 30 * 60.0


class UnsafeDirectory(RuntimeError):
    """The runtime directory exists but is not ours alone: refusing beats leaking calls to another user."""


def runtime_dir() -> str:
    """The private directory holding sockets, pid files and locks; created 0700 and verified.

    Every client must find the same directory, or each starts its own daemon. Codex passes its MCP
    servers only a few variables (not XDG_RUNTIME_DIR), so without it we look where systemd puts
    the user's runtime dir, /run/user/<uid>, before falling back to /tmp."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    uid = os.getuid()
    if not base:
        candidate = f"/run/user/{uid}"
        with contextlib.suppress(OSError):
            st = os.lstat(candidate)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o700:
                base = candidate
    path = os.path.join(base, "cargo-scheduler") if base else f"/tmp/cargo-scheduler-{uid}"
    ensure_private_dir(path, uid)
    return path


def ensure_private_dir(path: str, uid: int) -> None:
    """Create `path` 0700 if missing; refuse a symlink, a non-directory, or another owner.

    A wrong mode on our own directory is repaired (chmod); someone else's directory is never touched.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectory(f"{path} is not a plain directory")
    if st.st_uid != uid:
        raise UnsafeDirectory(f"{path} is owned by uid {st.st_uid}, not {uid}")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def state_dir() -> str:
    """Logs, the HTTP token and port: `$XDG_STATE_HOME/cargo-scheduler` (else ~/.local/state/...)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    path = os.path.join(base, "cargo-scheduler")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def workspace_root(start: str) -> str:
    """The cargo workspace root at or above `start`, resolved; `start` itself if there is no Cargo.toml.

    Mirrors `scheduler._workspace.find_root` (nearest manifest declaring `[workspace]`, else the
    nearest manifest) with a line scan instead of a TOML parse, to keep the front's imports tiny.
    Two sessions started in different subdirectories of one workspace must reach the same daemon.
    """
    here = os.path.realpath(start)
    nearest: str | None = None
    directory = here
    while True:
        manifest = os.path.join(directory, "Cargo.toml")
        if os.path.isfile(manifest):
            nearest = nearest or directory
            if _declares_workspace(manifest):
                return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return nearest or here
        directory = parent


def _declares_workspace(manifest: str) -> bool:
    try:
        with open(manifest, encoding="utf-8", errors="replace") as f:
            for line in f:
                s = line.strip()
                if s == "[workspace]" or s.startswith(("[workspace.", "workspace =", "workspace=")):
                    return True
    except OSError:
        return False
    return False


def workspace_key(root: str) -> str:
    """A short stable name for a resolved workspace root (sha256 prefix: collisions would cross wires)."""
    import hashlib

    return hashlib.sha256(os.fsencode(root)).hexdigest()[:20]


class Paths:
    """Every file belonging to one workspace's daemon."""

    def __init__(self, root: str) -> None:
        self.workspace = root
        key = workspace_key(root)
        rt = runtime_dir()
        self.socket = os.path.join(rt, f"{key}.sock")
        self.pidfile = os.path.join(rt, f"{key}.json")
        self.lock = os.path.join(rt, f"{key}.lock")
        self.spawn_lock = os.path.join(rt, f"{key}.spawn.lock")
        sd = state_dir()
        self.log = os.path.join(sd, f"daemon-{key}.log")
        self.http = os.path.join(sd, f"http-{key}.json")
        self.token = os.path.join(sd, "http-token")


def peer_allowed(peer_uid: int, own_uid: int | None = None) -> bool:
    """The daemon's whole authorisation rule for the unix socket: same uid, nobody else (not even root).

    Root could read the user's files anyway, but admitting it would let a root-run agent drive cargo
    in the user's workspace as the user; refusing is the least surprising rule.
    """
    return peer_uid == (os.getuid() if own_uid is None else own_uid)


def peer_uid(sock: object) -> int:
    """The uid of the process at the other end of a connected unix socket (SO_PEERCRED; Linux)."""
    import socket
    import struct

    assert isinstance(sock, socket.socket)
    if sys.platform.startswith("linux"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        return int(uid)
    getpeereid = getattr(os, "getpeereid", None)  # pragma: no cover - BSD/macOS have no SO_PEERCRED
    if getpeereid is None:  # pragma: no cover
        raise OSError("cannot read peer credentials on this platform")
    return int(getpeereid(sock.fileno())[0])  # pragma: no cover


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as dead (PID 1 in containers often never reaps orphans)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def toollist_digest(data: bytes) -> str:
    """Identifies the tool list a build ships; a daemon serving another one is outdated and replaced."""
    import zlib

    return f"{zlib.crc32(data):08x}-{len(data)}"


def idle_timeout_from_env(default: float = DEFAULT_IDLE_TIMEOUT) -> float:
    raw = os.environ.get(IDLE_TIMEOUT_ENV)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        return default

"""The stdlib client of the daemon (the shim's and the CLI's fast path): its imports, its wire format."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

from daemon_env import REPO
from hypothesis import given
from hypothesis import strategies as st

from scheduler.cli import _client
from scheduler.shell import _served

HEAVY = ("json", "socket", "typing", "tomllib", "hashlib", "_hashlib", "re", "enum", "argparse", "anyio", "mcp")


def test_the_shim_imports_nothing_heavier_than_os_and_the_c_socket_module() -> None:
    """Each of these costs the shim 4-16 ms on this project's machine; cargo's no-op costs 30."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules)\n"
        "import scheduler.cli._shim_run, scheduler.cli._client\n"
        "from scheduler.daemon import _socket; _socket.workspace_key('/x')\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-IS", "-c", code, str(REPO)], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert "scheduler.cli._client" in loaded
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []


@given(
    st.dictionaries(
        st.text(),
        st.one_of(
            st.text(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.lists(st.text()),
        ),
    )
)
def test_the_request_encoder_writes_what_json_reads_back(value: dict[str, object]) -> None:
    assert json.loads(_client.encode(value)) == value


def test_the_control_word_is_the_daemons() -> None:
    assert _client.CONTROL == _served.CONTROL


def _reply_through_a_socket(wire: bytes) -> tuple[int, str, str] | None:
    ours, theirs = socket.socketpair()

    def send() -> None:
        theirs.sendall(wire)
        theirs.close()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        ours.settimeout(10)
        return _client._read_answer(ours)
    finally:
        sender.join(10)
        ours.close()


def test_an_answer_frame_carries_exit_code_stdout_and_stderr_byte_exact() -> None:
    big = "é\n" * 300_000  # several reads
    reply = {"exit_code": 101, "stdout": big, "stderr": "error: x\n"}
    assert _reply_through_a_socket(_served.frame(reply)) == (101, big, "error: x\n")


def test_an_unfit_or_cut_reply_makes_the_caller_answer_without_the_daemon() -> None:
    assert _reply_through_a_socket(_served.frame({"unfit": "client version '0'\nand more"})) is None
    assert _reply_through_a_socket(b"answer 0 10 0\nshort") is None
    assert _reply_through_a_socket(b"") is None

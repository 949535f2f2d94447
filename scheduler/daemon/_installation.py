"""Whether the installation a daemon was started from still exists.

`pipx uninstall cargo-scheduler` (or `uv tool uninstall`, or deleting a venv) removes the package
and its interpreter but cannot stop a detached daemon: it would keep serving from the modules it
already imported, with its rust-analyzer, until its idle timeout (30 min by default) or forever if
sessions stay connected, and any module it has not imported yet would fail. So the daemon notes at
start the files that make up its installation and its idle watch looks at them every few seconds
(`CHECK_S`); once one is gone it stops as on `daemon stop`, killing its rust-analyzer and cargo.

What counts: this package's directory and its `__init__.py` (a wheel's, or a source checkout's for
an editable install), and the interpreter that runs it (a venv's `bin/python`, a link that goes
with the venv). A reinstall that puts them back in time keeps the daemon; the front replaces a
daemon of another version anyway.
"""

from __future__ import annotations

import os
import sys

CHECK_S = 2.0
"""Seconds between looks: three stat calls, and a daemon of an uninstalled package lingers at most this."""


class Installation:
    """The files the running daemon came from, recorded when it starts."""

    def __init__(self, files: tuple[str, ...] | None = None) -> None:
        if files is None:
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            files = (package, os.path.join(package, "__init__.py"), sys.executable)
        self.files = tuple(f for f in files if f)

    def missing(self) -> str | None:
        """The first recorded file that no longer exists, or None while the installation is whole."""
        for path in self.files:
            if not os.path.exists(path):
                return path
        return None

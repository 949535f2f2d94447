"""cargo's command line, spoken by us: its flags, the selection it makes, its output and exit codes.

Below both the CLI and the daemon: `cargo-scheduler check` answers in process with it, and the
daemon answers the stdlib client (`cli/_client.py`, the CLI's and the shim's fast path) with it, so
the two answers are one rendering. `_flags` is standard library only: the client imports it.
"""

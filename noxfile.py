"""Sessions: lint, tests, bench, tuning, docs, differential, stress.

Dependencies come from pyproject's dependency groups."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str) -> None:
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def lint(session: nox.Session) -> None:
    """Style and types gate a change as tests do: ruff format, ruff check, mypy --strict (over the tests and
    benchmarks too, so their dependencies are installed for mypy to read)."""
    install(session, "lint", "test", "bench")
    paths = ("scheduler", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", *paths)
    session.run("ruff", "check", *paths)
    session.run("mypy")  # scheduler, tests and bench (pyproject's [tool.mypy] files)
    session.run("mypy", "bench/conftest.py")  # a second `conftest` module: see pyproject


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: real cargo, real rust-analyzer, real MCP clients."""
    install(session, "test")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark report (docs/benchmarks.md): scenarios side by side with plain cargo at three sizes,
    agent sessions against the peers, and the hot-path micro-benchmarks. Args go to bench/report.py,
    e.g. `nox -s bench -- --workspace ../ripgrep` or `nox -s bench -- --quick`."""
    install(session, "bench")
    session.run("python", "bench/report.py", *session.posargs)


@nox.session
def peers(session: nox.Session) -> None:
    """The peers' own test suites against the peers and against this server, written to
    docs/benchmarks/peer-suites.md (bench/peer_suites.py; needs crates.io, and for rust-analyzer-mcp a
    clone of its repository at the released commit), e.g.
    `nox -s peers -- --rust-analyzer-mcp-checkout ../rust-analyzer-mcp`."""
    install(session, "bench")
    session.run("python", "bench/peer_suites.py", *session.posargs)


@nox.session
def tuning(session: nox.Session) -> None:
    """Each CARGO_SCHEDULER_* knob's measured effect on the agent sessions: rewrites the tables of
    docs/tuning.md (bench/tuning.py; about 25 minutes on 2 cores), e.g. `nox -s tuning -- --knobs prewarm`."""
    install(session, "bench")
    session.run("python", "bench/tuning.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Re-render docs/benchmarks.md (charts included) and docs/tuning.md's tables from the saved JSON,
    then check every relative link of the README and docs/ (tests/test_docs.py)."""
    install(session, "bench", "test")
    session.run("python", "bench/report.py", "--render-only")
    session.run("python", "bench/tuning.py", "--render-only")
    session.run("pytest", "-q", "tests/test_docs.py")


@nox.session
def differential(session: nox.Session) -> None:
    """The 200-edit differential acceptance run through the engine, the CLI and the daemon (the suite
    runs 16 per path). Another seed: `nox -s differential -- 11` (CARGO_SCHEDULER_DIFF_SEED)."""
    install(session, "test")
    env = {"CARGO_SCHEDULER_DIFF_EDITS": "200"}
    if session.posargs:
        env["CARGO_SCHEDULER_DIFF_SEED"] = session.posargs[0]
    session.run("pytest", "-q", "tests/engine/test_differential.py", env=env)


@nox.session
def stress(session: nox.Session) -> None:
    """Many agents at once: 8 clients x 200 mixed calls on one workspace (bench/stress.py)."""
    install(session, "test")
    session.run("python", "bench/stress.py", *(session.posargs or ["--clients", "8", "--calls", "200"]))

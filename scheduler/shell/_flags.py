"""The one table of cargo's flags for `check|clippy|build|test`: what the engine honours, what it may
ignore, and what sends the command to the real cargo instead.

Standard library only, and no argparse: the shim's client (`_client.py`) parses argv with this
module before it decides whether to ask the daemon, and a `cargo check` through the shim must not
pay for imports it does not need. Anything not in the table falls through to the real cargo with
the same argv: the real cargo then gives its own answer (or its own usage error) rather than ours
being wrong. cargo-scheduler's own flags (`--scope`, `--json`, `--timeout`, `--no-wait`, a
positional PATH) cannot be passed on to cargo, so combined with a falling-through flag they are a
usage error (exit 1, as cargo's are).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # `typing` costs the shim's client ~5 ms to import
if TYPE_CHECKING:
    from ..engine._engine import CheckRequest

MAP, ACCEPT, FALL = "map", "accept", "fall"

FLAGS: dict[str, tuple[bool, str, str]] = {
    # flag: (takes a value, handling, why)
    "-p": (True, MAP, "the packages answered (plain names; a spec with @, :, / or * falls through)"),
    "--package": (True, MAP, "as -p"),
    "--workspace": (False, MAP, "every member"),
    "--all": (False, MAP, "as --workspace"),
    "--exclude": (True, MAP, "with --workspace"),
    "--features": (True, MAP, "as cargo passes them"),
    "-F": (True, MAP, "as --features"),
    "--all-features": (False, MAP, "as cargo"),
    "--no-default-features": (False, MAP, "as cargo"),
    "--all-targets": (False, MAP, "as cargo"),
    "--release": (False, MAP, "as cargo"),
    "-r": (False, MAP, "as --release"),
    "--manifest-path": (True, MAP, "selects the package (or workspace) that manifest declares"),
    "--message-format": (True, MAP, "human, short, json (anything else falls through)"),
    "--color": (True, MAP, "auto, always, never"),
    "-q": (False, MAP, "no summary lines"),
    "--quiet": (False, MAP, "as -q"),
    "-v": (False, MAP, "also cargo-scheduler's provenance line (what ran, what came from the cache)"),
    "--verbose": (False, MAP, "as -v"),
    "--no-run": (False, MAP, "`test` only: build the test binaries (without it `test` runs the real cargo)"),
    "--keep-going": (False, ACCEPT, "the engine always keeps going (it may show more crates' errors than cargo)"),
    "-j": (True, ACCEPT, "parallelism changes no answer"),
    "--jobs": (True, ACCEPT, "as -j"),
    "--locked": (False, FALL, "the engine may write Cargo.lock; cargo must refuse instead"),
    "--frozen": (False, FALL, "as --locked"),
    "--offline": (False, FALL, "the engine's runs are not offline"),
    "--target": (True, FALL, "cross targets are not keyed"),
    "--target-dir": (True, FALL, "the engine chooses the target directory"),
    "--profile": (True, FALL, "custom profiles are not keyed"),
    "--lib": (False, FALL, "target selection is not keyed (only --all-targets)"),
    "--bins": (False, FALL, "as --lib"),
    "--bin": (True, FALL, "as --lib"),
    "--tests": (False, FALL, "as --lib"),
    "--test": (True, FALL, "as --lib"),
    "--examples": (False, FALL, "as --lib"),
    "--example": (True, FALL, "as --lib"),
    "--benches": (False, FALL, "as --lib"),
    "--bench": (True, FALL, "as --lib"),
    "--config": (True, FALL, "configuration on the command line is not keyed"),
    "-Z": (True, FALL, "unstable flags are not keyed"),
    "--timings": (False, FALL, "the report is cargo's"),
    "--future-incompat-report": (False, FALL, "the report is cargo's"),
    "--unit-graph": (False, FALL, "cargo's output"),
    "--fix": (False, FALL, "edits sources"),
}
"""cargo's flags; a flag that is not here (and every `+toolchain`, `-C`, `--help`) falls through."""

OWN: dict[str, bool] = {"--scope": True, "--timeout": True, "--json": False, "--no-wait": False}
"""cargo-scheduler's own flags (takes a value): they mean `PATH`-style use of the old CLI."""

KINDS = ("check", "clippy", "build", "test", "test-build")
SCOPES = ("auto", "changed", "affected", "workspace")
FORMATS = ("human", "short", "json")
COLORS = ("auto", "always", "never")


class Parsed:
    """What a command line asks. `fall` (a reason) means: run the real cargo with the same argv;
    `usage` (a message): a usage error, exit 1; `help`: print the usage."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.packages: list[str] = []
        self.workspace = False
        self.exclude: list[str] = []
        self.features: list[str] = []
        self.all_features = False
        self.no_default_features = False
        self.all_targets = False
        self.release = False
        self.manifest_path: str | None = None
        self.message_format = "human"
        self.color: str | None = None
        self.quiet = False
        self.verbose = 0
        self.no_run = kind == "test-build"
        self.deny_warnings = False
        self.path: str | None = None
        self.scope: str | None = None
        self.timeout: float | None = None
        self.json = False
        self.no_wait = False
        self.fall: str | None = None
        self.usage: str | None = None
        self.help = False

    @property
    def own(self) -> bool:
        """Whether the old CLI's flags are used (then the old CLI's output is wanted too)."""
        return self.path is not None or self.scope is not None or self.json or self.no_wait or self.timeout is not None

    def to_json(self) -> dict[str, object]:
        return dict(vars(self))

    def request(
        self,
        kind: str,
        *,
        scope: str,
        packages: tuple[str, ...],
        env: tuple[tuple[str, str], ...],
        timeout_s: float | None = None,
    ) -> CheckRequest:
        """The engine's CheckRequest for these flags (imported here: this module stays stdlib-only
        for the daemon client, which never builds one)."""
        from ..engine._engine import CheckRequest

        return CheckRequest(
            kind=kind,  # type: ignore[arg-type]  # one of the engine's kinds, by `parse`
            scope=scope,  # type: ignore[arg-type]
            packages=packages,
            features=tuple(self.features),
            all_features=self.all_features,
            no_default_features=self.no_default_features,
            all_targets=self.all_targets,
            release=self.release,
            deny_warnings=self.deny_warnings,
            timeout_s=timeout_s,
            env=env,
        )


def parse(kind: str, argv: list[str]) -> Parsed:
    """Parse `argv` (after the subcommand) for `kind`; never raises."""
    p = Parsed(kind)
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            _trailing(p, args)
            break
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        if name in ("-h", "--help"):
            p.help = True
            continue
        if len(name) > 2 and name[0] == "-" and name[1] != "-":  # -pname, -j4, -Ffeat, -qv
            short, rest = name[:2], name[2:]
            if short in FLAGS and FLAGS[short][0]:
                name, value = short, rest
            elif all(f"-{c}" in FLAGS and not FLAGS[f"-{c}"][0] for c in name[1:]):
                args[:0] = [f"-{c}" for c in name[1:]]
                continue
        if name in OWN:
            if OWN[name] and value is None:
                if not args:
                    p.usage = f"a value is required for '{name} <VALUE>' but none was supplied"
                    break
                value = args.pop(0)
            _own(p, name, value)
            continue
        if name.startswith("-") and name != "-":
            spec = FLAGS.get(name)
            if spec is None:
                p.fall = p.fall or f"{name} is not one cargo-scheduler honours"
                if "=" not in arg and args and not args[0].startswith("-"):
                    args.pop(0)  # its value, probably: leave the parsing to cargo
                continue
            takes, handling, _why = spec
            if takes and value is None:
                if not args:
                    p.usage = f"a value is required for '{name} <VALUE>' but none was supplied"
                    break
                value = args.pop(0)
            if handling == FALL:
                p.fall = p.fall or f"{name} is not one cargo-scheduler honours"
            elif handling == MAP:
                _map(p, name, value)
            continue
        _positional(p, arg)
    if p.usage is None and p.fall is not None and p.own:
        p.usage = (
            f"{p.fall}, and cargo-scheduler's own flags (--scope, --json, --timeout, --no-wait, PATH) are not cargo's"
        )
    if kind == "test" and not p.no_run:
        p.fall = p.fall or "`test` runs tests: the real cargo does (`--no-run` builds through the engine)"
    return p


def start_dir(parsed: Parsed, cwd: str) -> str:
    """Where the workspace is looked for: the manifest's directory, the old CLI's PATH, or cwd."""
    if parsed.manifest_path:
        return os.path.dirname(os.path.abspath(os.path.join(cwd, parsed.manifest_path)))
    return os.path.abspath(os.path.join(cwd, parsed.path)) if parsed.path else cwd


def _own(p: Parsed, name: str, value: str | None) -> None:
    if name == "--scope":
        if value not in SCOPES:
            p.usage = f"invalid value {value!r} for '--scope': one of {', '.join(SCOPES)}"
        p.scope = value
    elif name == "--timeout":
        try:
            p.timeout = float(value or "")
        except ValueError:
            p.usage = f"invalid value {value!r} for '--timeout': a number of seconds"
    elif name == "--json":
        p.json = True
    else:
        p.no_wait = True


def _map(p: Parsed, name: str, value: str | None) -> None:
    v = value or ""
    if name in ("-p", "--package"):
        if any(c in v for c in "@:/*?["):
            p.fall = p.fall or f"package spec {v!r}"
        p.packages.append(v)
    elif name in ("--workspace", "--all"):
        p.workspace = True
    elif name == "--exclude":
        p.exclude.append(v)
    elif name in ("--features", "-F"):
        p.features += [f for f in v.replace(",", " ").split() if f]
    elif name == "--all-features":
        p.all_features = True
    elif name == "--no-default-features":
        p.no_default_features = True
    elif name == "--all-targets":
        p.all_targets = True
    elif name in ("--release", "-r"):
        p.release = True
    elif name == "--manifest-path":
        p.manifest_path = v
    elif name == "--message-format":
        if v not in FORMATS:
            p.fall = p.fall or f"--message-format={v}"
        p.message_format = v
    elif name == "--color":
        if v not in COLORS:
            p.usage = f"invalid value {v!r} for '--color <WHEN>': one of {', '.join(COLORS)}"
        p.color = v
    elif name in ("-q", "--quiet"):
        p.quiet = True
    elif name in ("-v", "--verbose"):
        p.verbose += 1
    elif name == "--no-run":
        if p.kind not in ("test", "test-build"):
            p.fall = p.fall or f"--no-run with {p.kind}"
        p.no_run = True


def _positional(p: Parsed, arg: str) -> None:
    if p.kind == "test":
        return  # TESTNAME: only filters which tests run, and `--no-run` runs none
    if p.path is None:
        p.path = arg  # the old CLI's workspace PATH (cargo has no positional here)
    else:
        p.usage = f"unexpected argument '{arg}' found"


def _trailing(p: Parsed, args: list[str]) -> None:
    """After `--`: `clippy -- -D warnings` is mapped; anything else goes to rustc/tests: cargo's."""
    if p.kind == "clippy" and args in (["-D", "warnings"], ["-Dwarnings"], ["--deny", "warnings"]):
        p.deny_warnings = True
    elif p.kind == "test" and p.no_run:
        return  # test binaries' arguments: nothing runs them
    elif args:
        p.fall = p.fall or f"arguments after -- ({' '.join(args)})"


def usage(kind: str) -> str:
    lines = [
        f"usage: cargo-scheduler {kind} [OPTIONS]" + (" [TESTNAME] [-- ARGS]" if kind == "test" else " [PATH]"),
        "",
        "cargo's flags, as cargo-scheduler handles them (any other flag runs the real cargo):",
    ]
    for flag, (takes, handling, why) in FLAGS.items():
        lines.append(f"  {flag + (' <VALUE>' if takes else ''):26} {handling:7} {why}")
    lines += [
        "",
        "cargo-scheduler's own (the old CLI's: its summary line and scopes):",
        "  PATH                       the workspace (default: the current directory)",
        "  --scope auto|changed|affected|workspace",
        "  --json                     one JSON answer on stdout (exit 0 or 1)",
        "  --timeout SECONDS          before cargo is killed",
        "  --no-wait                  auto scope: do not wait for dependents",
    ]
    return "\n".join(lines)

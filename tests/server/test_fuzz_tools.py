"""Every tool fuzzed with bad input through the in-memory MCP client: each bad call is an `isError`
answer naming the bad argument, the server stays up, and the next good call works.

One server (and one rust-analyzer-free, cargo-free fast path) serves the whole module: the bad
calls are refused before anything runs, so an example costs two round trips. The client lives in a
blocking portal so hypothesis can drive it from plain (sync) test functions. Every value generated
here is invalid by construction; a valid one would run cargo (or rust-analyzer) and fail the test
by being slow or by answering normally, which is the point: nothing slips through as "valid".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mcp import Client

from scheduler import GeneratedWorkspace, ServerState, build_server, generate_workspace
from scheduler.server import _paths

HUB_LIB = "crates/hub/src/lib.rs"
CALL_BOUND_S = 60.0
FUZZ = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
LSP_UINTEGER_MAX = 2**31 - 1
SCHEDULER_DIR = Path(__file__).resolve().parents[2] / "scheduler"


@dataclass
class Server:
    portal: BlockingPortal
    client: Client
    ws: GeneratedWorkspace
    outside: Path
    schemas: dict[str, dict[str, Any]]

    def call(self, tool: str, args: dict[str, Any]) -> tuple[bool, str, dict[str, Any] | None]:
        async def bounded() -> Any:
            with anyio.fail_after(CALL_BOUND_S):
                return await self.client.call_tool(tool, args)

        result = self.portal.call(bounded)
        text = "".join(getattr(c, "text", "") for c in result.content)
        return bool(result.is_error), text, result.structured_content

    def refused(self, tool: str, args: dict[str, Any], argument: str, says: str | None = None) -> None:
        """The call is an isError answer naming `argument`; then a good call still works."""
        is_error, text, data = self.call(tool, args)
        assert is_error, f"{tool}({args!r}) was answered normally: {text[:300]}"
        assert argument in text, f"{tool}({args!r}): the error does not name {argument!r}: {text[:300]}"
        if data is not None and "argument" in data:
            assert data["argument"] == argument, data
        if says is not None:
            assert says in text, f"{tool}({args!r}): {text[:300]}"
        self.good_call_works()

    def good_call_works(self) -> None:
        is_error, text, data = self.call("cargo_affected", {"files": [HUB_LIB]})
        assert not is_error and data is not None and data["owners"] == ["hub"], text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("fuzz")
    ws = generate_workspace(base / "ws", crates=6)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.rs").write_text("// outside the workspace\n")
    src = ws.crate_dir("hub") / "src"
    (src / "escape.rs").symlink_to(outside / "secret.rs")
    (src / "outdir").symlink_to(outside)
    (src / "loop_a.rs").symlink_to(src / "loop_b.rs")
    (src / "loop_b.rs").symlink_to(src / "loop_a.rs")
    with start_blocking_portal("asyncio") as portal:
        state = portal.wrap_async_context_manager(ServerState(ws.root, cache_dir=base / "cache"))
        with state as st_, portal.wrap_async_context_manager(Client(build_server(ws.root, state=st_))) as client:
            tools = portal.call(client.list_tools).tools
            schemas = {t.name: t.input_schema for t in tools}
            yield Server(portal, client, ws, outside, schemas)


# -- what a good call of each tool needs (wrong values are put in one at a time) ------------------
def required_base(server: Server, tool: str) -> dict[str, Any]:
    """Valid values for the tool's required parameters (never enough to run anything by themselves:
    every example adds one bad value)."""
    good = {
        "file_path": HUB_LIB,
        "line": 0,
        "character": 0,
        "end_line": 0,
        "end_character": 0,
        "new_name": "renamed",
        "dependencies": ["serde"],
        "files": [HUB_LIB],
        "path": str(server.ws.root),
        "workspace_path": str(server.ws.root),
        "job_id": "job-0000000000000000",
        "cursor": "page-0000000000000000",
    }
    required = server.schemas[tool].get("required", [])
    return {name: good[name] for name in required}


def _types(schema: dict[str, Any]) -> list[dict[str, Any]]:
    if "anyOf" in schema:
        return [t for s in schema["anyOf"] for t in _types(s)]
    return [schema]


BOOLISH = {"true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0"}
FLOATISH = {"inf", "infinity", "nan", "-inf", "+inf"}


def accepts(schema: dict[str, Any], value: Any) -> bool:
    """Would pydantic's lax mode take `value` for `schema`? (Errs on the side of yes.)"""
    for option in _types(schema):
        if "enum" in option or "const" in option:
            if value in option.get("enum", [option.get("const")]):
                return True
            continue
        kind = option.get("type")
        if kind == "null" and value is None:
            return True
        if kind == "string" and isinstance(value, str):
            return True
        numeric = kind in ("integer", "number")
        if (
            numeric
            and isinstance(value, int | float)
            and (kind == "number" or isinstance(value, bool) or float(value).is_integer())
        ):
            return True
        if (
            numeric
            and isinstance(value, str)
            and (value.strip().lower() in FLOATISH or re.fullmatch(r"\s*[-+]?[\d_.]+\s*", value))
        ):
            return True
        if kind == "boolean" and (
            isinstance(value, bool) or value in (0, 1) or (isinstance(value, str) and value.lower() in BOOLISH)
        ):
            return True
        if kind == "array" and isinstance(value, list):
            items = option.get("items", {})
            if all(accepts(items, v) for v in value):
                return True
        if kind == "object" and isinstance(value, dict):
            extra = option.get("additionalProperties", {})
            if not isinstance(extra, dict) or all(accepts(extra, v) for v in value.values()):
                return True
    return False


JUNK = st.one_of(
    st.text(st.characters(categories=["L"]), min_size=2, max_size=12).filter(
        lambda s: s.lower() not in BOOLISH | FLOATISH
    ),
    st.integers(min_value=2, max_value=10**12) | st.integers(max_value=-2, min_value=-(10**12)),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9).filter(
        lambda f: not float(f).is_integer()
    ),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), min_size=1, max_size=2),
    st.booleans(),
)


def _tool_and_param(server: Server, data: st.DataObject) -> tuple[str, str, dict[str, Any]]:
    tool = data.draw(st.sampled_from(sorted(t for t, s in server.schemas.items() if s.get("properties"))))
    params = server.schemas[tool]["properties"]
    name = data.draw(st.sampled_from(sorted(params)))
    return tool, name, params[name]


# -- wrong types, missing and extra fields ------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_a_value_of_the_wrong_type_is_refused_naming_the_parameter(server: Server, data: st.DataObject) -> None:
    tool, name, schema = _tool_and_param(server, data)
    value = data.draw(JUNK.filter(lambda v: not accepts(schema, v)), label="value")
    server.refused(tool, {**required_base(server, tool), name: value}, name)


def test_each_missing_required_parameter_is_refused_naming_it(server: Server) -> None:
    pairs = [(tool, name) for tool, schema in sorted(server.schemas.items()) for name in schema.get("required", [])]
    assert len(pairs) >= 20, "every peer tool with required parameters takes part"
    for tool, name in pairs:
        args = required_base(server, tool)
        del args[name]
        server.refused(tool, args, name)


@FUZZ
@given(data=st.data(), extra=st.from_regex(r"[a-z][a-z_]{0,14}", fullmatch=True))
def test_an_unknown_parameter_is_refused_naming_it_not_silently_dropped(
    server: Server, data: st.DataObject, extra: str
) -> None:
    tool = data.draw(st.sampled_from(sorted(server.schemas)))
    if extra in server.schemas[tool].get("properties", {}):
        extra += "_x"
    server.refused(tool, {**required_base(server, tool), extra: data.draw(JUNK | st.none())}, extra)


# -- huge and negative numbers, positions past the end of a file -------------------------------------------
NUMERIC = [
    (tool, name)
    for tool, name in [
        ("rust_analyzer_hover", "line"),
        ("rust_analyzer_hover", "character"),
        ("rust_analyzer_references", "line"),
        ("rust_analyzer_completion", "character"),
        ("rust_analyzer_code_actions", "end_line"),
        ("rust_analyzer_code_actions", "end_character"),
        ("rust_analyzer_rename", "line"),
        ("rust_analyzer_definition", "character"),
        ("cargo_check", "max_tokens"),
        ("cargo_check", "timeout_s"),
        ("cargo_fmt_check", "timeout_s"),
        ("cargo_run", "timeout_s"),
        ("cargo_test", "timeout_s"),
        ("rust_analyzer_symbols", "max_tokens"),
        ("scheduler_status", "recent_events"),
    ]
]
OUT_OF_RANGE = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=10**6, max_value=10**40),
    st.floats(min_value=1e6, max_value=1e300),
    st.floats(max_value=-1e-9, min_value=-1e300),
)


@FUZZ
@given(target=st.sampled_from(NUMERIC), value=OUT_OF_RANGE)
def test_huge_and_negative_numbers_are_refused_naming_the_parameter(
    server: Server, target: tuple[str, str], value: float
) -> None:
    tool, name = target
    schema = server.schemas[tool]["properties"][name]
    if any(t.get("type") == "integer" for t in _types(schema)) and isinstance(value, float):
        value = int(value)  # an integer parameter: the fraction would be refused for another reason
    # A character past the end of its line is the line's end (LSP): only what LSP cannot express
    # (negative, or past its uinteger) is bad there.
    assume(not name.endswith("character") or value < 0 or value > LSP_UINTEGER_MAX)
    server.refused(tool, {**required_base(server, tool), name: value}, name)


@pytest.mark.parametrize("tool", ["rust_analyzer_hover", "rust_analyzer_definition", "rust_analyzer_rename"])
def test_a_line_just_past_the_end_of_the_file_is_refused(server: Server, tool: str) -> None:
    text = server.ws.lib_rs("hub").read_text()
    lines = text.split("\n")
    base = required_base(server, tool)
    server.refused(tool, {**base, "line": len(lines)}, "line", "past the end")


def test_a_timeout_of_zero_is_refused_and_one_within_a_day_is_not_mistaken_for_bad(server: Server) -> None:
    server.refused("cargo_check", {"timeout_s": 0}, "timeout_s")
    server.refused("cargo_fmt_check", {"timeout_s": 86400.5}, "timeout_s")


# -- odd unicode ----------------------------------------------------------------------------------------
ODD = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/"),
    min_size=1,
    max_size=40,
).filter(lambda s: any(ord(c) > 127 and not c.isspace() for c in s))
UNICODE_TARGETS = [
    ("cargo_check", "package"),
    ("cargo_check", "features"),
    ("cargo_check", "toolchain"),
    ("cargo_check", "workspace"),
    ("cargo_test", "test_name"),
    ("cargo_run", "bin"),
    ("cargo_run", "example"),
    ("cargo_bench", "baseline"),
    ("cargo_bench", "bench_name"),
    ("cargo_update", "package"),
    ("rust_analyzer_hover", "file_path"),
    ("rust_analyzer_symbols", "file_path"),
    ("rust_analyzer_diagnostics", "file_path"),
    ("set_working_directory", "path"),
    ("rust_analyzer_set_workspace", "workspace_path"),
    ("rust_analyzer_rename", "new_name"),
    ("cargo_add", "dependencies"),
    ("cargo_check", "cargo_env"),
]


@FUZZ
@given(target=st.sampled_from(UNICODE_TARGETS), text=ODD)
def test_odd_unicode_in_a_name_or_path_is_refused_naming_the_parameter(
    server: Server, target: tuple[str, str], text: str
) -> None:
    tool, name = target
    args = required_base(server, tool)
    if name == "dependencies":
        args.update(dependencies=["serde", text], dry_run=True)
    elif name == "cargo_env":
        args[name] = {text: "1"}
    elif name == "new_name":
        text += " +"  # identifiers may be Unicode; this one is not an identifier
        args[name] = text
    else:
        args[name] = text
    server.refused(tool, args, name)


# -- paths: `..`, symlinks out of the workspace, file:// URIs naming other hosts ------------------------
PATH_TOOLS = [
    ("rust_analyzer_hover", "file_path"),
    ("rust_analyzer_symbols", "file_path"),
    ("rust_analyzer_diagnostics", "file_path"),
    ("rust_analyzer_code_actions", "file_path"),
    ("cargo_affected", "files"),
]


def _put_path(server: Server, tool: str, name: str, path: str) -> dict[str, Any]:
    args = required_base(server, tool)
    args[name] = [HUB_LIB, path] if name == "files" else path
    return args


@st.composite
def escaping_paths(draw: st.DrawFn, root: str) -> str:
    prefix = draw(st.sampled_from(["", "./", "crates/", "crates/hub/", "crates/hub/src/", "crates/./hub/"]))
    ups = draw(st.integers(min_value=4, max_value=9))
    noise = draw(st.sampled_from(["", "crates/../", "x/../"]))
    suffix = draw(st.sampled_from(["etc/passwd", "outside/secret.rs", "secret.rs", "", "ws/../../x.rs"]))
    path = prefix + noise + "../" * ups + suffix
    spelling = draw(st.sampled_from(["relative", "absolute", "uri", "encoded-uri"]))
    if spelling == "absolute":
        return f"{root}/{path}"
    if spelling == "uri":
        return f"file://{root}/{path}"
    if spelling == "encoded-uri":
        return f"file://{root}/{path}".replace("..", "%2e%2e")
    return path


@FUZZ
@given(data=st.data(), target=st.sampled_from(PATH_TOOLS))
def test_a_path_climbing_out_with_dot_dot_is_refused_in_every_spelling(
    server: Server, data: st.DataObject, target: tuple[str, str]
) -> None:
    tool, name = target
    path = data.draw(escaping_paths(str(server.ws.root)), label="path")
    server.refused(tool, _put_path(server, tool, name, path), name, "outside the workspace")


SYMLINK_SPELLINGS = [
    "crates/hub/src/escape.rs",
    "crates/hub/./src/escape.rs",
    "crates//hub/src/escape.rs",
    "crates/hub/src/../src/escape.rs",
    "crates/hub/src/outdir/secret.rs",
    "crates/hub/src/outdir/../outdir/secret.rs",
    "{root}/crates/hub/src/escape.rs",
    "file://{root}/crates/hub/src/escape.rs",
    "file://localhost{root}/crates/hub/src/outdir/secret.rs",
]


@FUZZ
@given(spelling=st.sampled_from(SYMLINK_SPELLINGS), target=st.sampled_from(PATH_TOOLS))
def test_a_symlink_out_of_the_workspace_is_refused_however_it_is_spelled(
    server: Server, spelling: str, target: tuple[str, str]
) -> None:
    tool, name = target
    path = spelling.format(root=server.ws.root)
    server.refused(tool, _put_path(server, tool, name, path), name, "outside the workspace")


def test_a_symlink_loop_is_refused_naming_the_path_argument(server: Server) -> None:
    for tool, name in PATH_TOOLS:
        if name == "files":
            continue
        server.refused(tool, _put_path(server, tool, name, "crates/hub/src/loop_a.rs"), name)


HOSTS = st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,24}(:[0-9]{1,5})?", fullmatch=True).filter(
    lambda h: h.lower() != "localhost"
) | st.sampled_from(["user@localhost", "LOCALHOST.evil", "127.0.0.1", "[::1]"])


@FUZZ
@given(host=HOSTS, target=st.sampled_from([t for t in PATH_TOOLS if t[1] == "file_path"]))
def test_a_file_uri_naming_another_host_is_refused(server: Server, host: str, target: tuple[str, str]) -> None:
    tool, name = target
    uri = f"file://{host}{server.ws.root}/{HUB_LIB}"
    server.refused(tool, _put_path(server, tool, name, uri), name, "only local files")


# -- names that become cargo arguments ------------------------------------------------------------------
PACKAGE_TOOLS = [
    "cargo_check",
    "cargo_build",
    "cargo_test",
    "cargo_clippy",
    "cargo_fmt_check",
    "cargo_fmt",
    "cargo_bench",
    "cargo_run",
    "cargo_clean",
    "cargo_remove",
]


@FUZZ
@given(tool=st.sampled_from(PACKAGE_TOOLS), name=st.from_regex(r"[a-z][a-z0-9_\-]{0,20}", fullmatch=True))
def test_a_package_that_is_not_a_member_is_refused_before_anything_runs(server: Server, tool: str, name: str) -> None:
    if name in server.ws.members:
        name += "_nope"
    args = {**required_base(server, tool), "package": name}
    if tool == "cargo_remove":
        args["dry_run"] = True
    before = {p: p.stat().st_mtime_ns for p in server.ws.root.rglob("*.rs") if not p.is_symlink()}
    server.refused(tool, args, "package", "not a member")
    after = {p: p.stat().st_mtime_ns for p in server.ws.root.rglob("*.rs") if not p.is_symlink()}
    assert before == after, "a refused call changed no file"


SHELL = st.sampled_from(
    [
        ";",
        "|",
        "&&",
        "$(",
        "`",
        ">",
        "<",
        "'",
        '"',
        "\\",
        "*",
        "?",
        "!",
        "{",
        "}",
        "(",
        ")",
        "#",
        "~",
        "=",
        "%",
        "^",
        "[",
        "]",
        "$IFS",
    ]
)
WORD = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@st.composite
def shell_strings(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(WORD, SHELL, st.just(" "), st.just(",")), min_size=1, max_size=8))
    return "".join(parts) + draw(SHELL) + draw(WORD)


FEATURE_TOOLS = [
    ("cargo_check", "features"),
    ("cargo_build", "features"),
    ("cargo_test", "features"),
    ("cargo_run", "features"),
    ("cargo_add", "features"),
    ("cargo_check", "toolchain"),
    ("cargo_test", "test_name"),
    ("cargo_run", "bin"),
    ("cargo_bench", "bench_name"),
]


@FUZZ
@given(target=st.sampled_from(FEATURE_TOOLS), text=shell_strings(), as_list=st.booleans())
def test_shell_syntax_in_a_feature_or_name_is_refused_naming_the_parameter(
    server: Server, target: tuple[str, str], text: str, as_list: bool
) -> None:
    tool, name = target
    args = required_base(server, tool)
    if tool == "cargo_add":
        args["dry_run"] = True
        as_list = True
    args[name] = [text] if as_list and name == "features" else text
    server.refused(tool, args, name)


UNSAFE_NAMES = st.one_of(
    st.sampled_from(sorted(_paths.UNSAFE_ENV)),
    st.builds(
        lambda p, s: p + s,
        st.sampled_from(_paths.UNSAFE_ENV_PREFIXES),
        st.from_regex(r"[A-Z0-9_]{1,12}", fullmatch=True),
    ),
    st.builds(
        lambda t, k: f"CARGO_TARGET_{t}_{k}",
        st.sampled_from(["X86_64_UNKNOWN_LINUX_GNU", "AARCH64_APPLE_DARWIN"]),
        st.sampled_from(["RUNNER", "LINKER", "AR"]),
    ),
)
UNSAFE_FLAGS = st.sampled_from(
    [
        "-C linker=/tmp/evil",
        "-Clinker=/tmp/evil",
        "-C link-arg=-B/tmp",
        "-C link_arg=-B/tmp",
        "-C link_args=-fuse-ld=x",
        "--sysroot /tmp",
        "-Zbuild-std",
        "-Z unstable-options",
        "@/etc/passwd",
        "--emit=link=/tmp/x",
        "-o /tmp/x",
        "--out-dir=/tmp",
        "-C incremental=/tmp/i",
        "--extern evil=/tmp/libevil.so",
        "-Ccodegen-backend=/tmp/x.so",
        "-C link-self-contained=y",
        "-C profile-generate=/tmp/p",
    ]
)


@FUZZ
@given(
    tool=st.sampled_from(["cargo_check", "cargo_test", "cargo_fmt_check", "cargo_run", "cargo_build"]),
    env=st.one_of(
        st.builds(lambda n: {n: "/tmp/evil"}, UNSAFE_NAMES),
        st.builds(
            lambda v, n, safe: {n: f"{safe} {v}".strip()},
            UNSAFE_FLAGS,
            st.sampled_from(
                [
                    "RUSTFLAGS",
                    "RUSTDOCFLAGS",
                    "CARGO_ENCODED_RUSTFLAGS",
                    "CARGO_BUILD_RUSTFLAGS",
                    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                ]
            ),
            st.sampled_from(["", "-D warnings", "--cfg foo"]),
        ),
        st.builds(lambda n: {n: "1"}, st.sampled_from(["A=B", "1X", "", "X Y", "X;Y", "$(id)"])),
    ),
)
def test_cargo_env_that_changes_what_runs_is_refused_without_the_server_option(
    server: Server, tool: str, env: dict[str, str]
) -> None:
    server.refused(tool, {**required_base(server, tool), "cargo_env": env}, "cargo_env")


# -- nothing reaches a shell ------------------------------------------------------------------------------
_SPAWNERS = {
    "run_process",
    "open_process",
    "Popen",
    "run",
    "call",
    "check_call",
    "check_output",
    "create_subprocess_exec",
    "create_subprocess_shell",
    "system",
    "popen",
    "spawnl",
    "execl",
}


def test_no_module_starts_a_process_through_a_shell() -> None:
    """Every process the server starts gets an argv list: no `shell=True`, no string command (which
    anyio and asyncio hand to /bin/sh), no os.system/popen."""
    problems = []
    for source in sorted(SCHEDULER_DIR.rglob("*.py")):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            where = f"{source.name}:{node.lineno}"
            if any(
                k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in node.keywords
            ):
                problems.append(f"{where}: shell= passed to {name}")
            if name in ("create_subprocess_shell", "system", "popen") and owner in ("os", "asyncio", ""):
                problems.append(f"{where}: {owner}.{name} runs a shell")
            if (
                name in ("run_process", "open_process")
                and node.args
                and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
            ):
                problems.append(f"{where}: {name} with a string command runs a shell")
    assert problems == []


def test_shell_syntax_in_program_args_and_env_values_stays_literal(server: Server, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    payloads = [
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"; touch {canary}",
        f"| touch {canary}",
        f"&& touch {canary}",
    ]
    is_error, text, data = server.call(
        "cargo_run", {"package": "leaf_001", "args": payloads, "cargo_env": {"RUST_LOG": payloads[0]}, "timeout_s": 300}
    )
    assert not is_error and data is not None and data["success"], text[:500]
    assert data["command"][-len(payloads) :] == payloads
    is_error, text, data = server.call("cargo_fmt_check", {"cargo_env": {"NO_COLOR": payloads[1]}})
    assert not is_error, text
    assert not canary.exists(), "a payload reached a shell"

"""The one workspace-root finder, asked through both of its users on the same manifests: the engine's
`find_root` and the front's `workspace_root` must send a session to the same root."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler._exceptions import NotAWorkspace
from scheduler.cargo._root import find_workspace_root
from scheduler.cargo._workspace import find_root
from scheduler.daemon._socket import workspace_root

PACKAGE = '[package]\nname = "inner"\nversion = "0.1.0"\n'

# (outer manifest, does it make the outer directory the workspace root?)
MANIFESTS = {
    "plain-header": ("[workspace]\nmembers = ['inner']\n", True),
    "header-with-comment": ("[workspace]  # the whole tree\nmembers = ['inner']\n", True),
    "spaced-header": ("[ workspace ]\n", True),
    "quoted-header": ('["workspace"]\n', True),
    "subtable-only": ('[workspace.package]\nversion = "1.0.0"\n', True),
    "after-a-package": (PACKAGE.replace("inner", "outer") + "\n[workspace]\n", True),
    "package-pointing-elsewhere": ('[package]\nname = "outer"\nworkspace = "../elsewhere"\n', False),
    "inherited-dependency": (PACKAGE.replace("inner", "outer") + "[dependencies]\nserde.workspace = true\n", False),
    "header-inside-a-string": (PACKAGE.replace("inner", "outer") + 'description = """\n[workspace]\n"""\n', False),
    "unparsable": ("[workspace\n", False),
    "not-utf8": (None, False),
}


@pytest.mark.parametrize(("outer", "is_root"), list(MANIFESTS.values()), ids=list(MANIFESTS))
def test_both_finders_agree_with_cargos_reading_of_the_manifest(
    tmp_path: Path, outer: str | None, is_root: bool
) -> None:
    (tmp_path / "ws" / "inner" / "src").mkdir(parents=True)
    manifest = tmp_path / "ws" / "Cargo.toml"
    if outer is None:
        manifest.write_bytes(b"[workspace]\n# \xff\xfe\n")
    else:
        manifest.write_text(outer)
    (tmp_path / "ws" / "inner" / "Cargo.toml").write_text(PACKAGE)
    start = tmp_path / "ws" / "inner" / "src"
    expected = (tmp_path / "ws" if is_root else tmp_path / "ws" / "inner").resolve()
    assert find_root(start) == expected
    assert workspace_root(str(start)) == str(expected)


def test_outside_any_manifest_the_engine_refuses_and_the_front_keeps_its_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAWorkspace, match=r"no Cargo\.toml"):
        find_root(tmp_path / "empty")
    assert workspace_root(str(tmp_path / "empty")) == str((tmp_path / "empty").resolve())


def test_both_finders_resolve_symlinks_so_two_spellings_share_a_root(tmp_path: Path) -> None:
    (tmp_path / "ws" / "src").mkdir(parents=True)
    (tmp_path / "ws" / "Cargo.toml").write_text("[workspace]\n")
    (tmp_path / "link").symlink_to(tmp_path / "ws")
    assert find_root(tmp_path / "link" / "src") == (tmp_path / "ws").resolve()
    assert workspace_root(str(tmp_path / "link" / "src")) == str((tmp_path / "ws").resolve())


def test_a_manifest_edited_into_or_out_of_a_workspace_is_read_again(tmp_path: Path) -> None:
    """The parse is remembered by the manifest's stat (the daemon asks at every shell `cargo check`)."""
    member = tmp_path / "ws" / "member"
    member.mkdir(parents=True)
    (member / "Cargo.toml").write_text('[package]\nname = "member"\n')
    root = tmp_path / "ws" / "Cargo.toml"
    root.write_text('[package]\nname = "top"\n')
    assert find_workspace_root(str(member)) == str(member.resolve())
    root.write_text('[workspace]\nmembers = ["member"]\n')
    assert find_workspace_root(str(member)) == str((tmp_path / "ws").resolve())
    root.write_text('[package]\nname = "top2"\n')
    assert find_workspace_root(str(member)) == str(member.resolve())

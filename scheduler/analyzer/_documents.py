"""Keeping rust-analyzer's view of the files the same as the disk's.

Agents edit files directly, not through us. rust-analyzer watches the disk for files nobody opened,
but an *open* document belongs to the client: rust-analyzer never re-reads it. So before every
query each open document is checked against the disk (one batch of `stat` calls; a read and a hash
only when the stat changed) and re-sent in full when its content differs, closed when it vanished.
The number of open documents is bounded: the least recently queried one is closed first, after
which rust-analyzer goes back to reading it from disk.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import anyio
import xxhash

from .._exceptions import InvalidArgument
from . import _lsp

DID_OPEN = "textDocument/didOpen"
DID_CHANGE = "textDocument/didChange"
DID_CLOSE = "textDocument/didClose"
DID_SAVE = "textDocument/didSave"

StatKey = tuple[int, int]  # (mtime_ns, size)


def uri_to_path(uri: str) -> Path:
    """The path of a file:// URI as rust-analyzer spells it (percent-encoded, maybe different case)."""
    return Path(unquote(urlparse(uri).path))


@dataclass
class _Doc:
    uri: str
    version: int
    stat: StatKey
    digest: int


def _stat_all(paths: list[Path]) -> dict[Path, StatKey | None]:
    out: dict[Path, StatKey | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
            out[path] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[path] = None
    return out


def _read(path: Path) -> tuple[StatKey, bytes] | None:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            return (st.st_mtime_ns, st.st_size), f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


class OpenDocuments:
    """The documents open in one rust-analyzer process (a restart starts a fresh set)."""

    def __init__(self, client: _lsp.LspClient, max_open: int = 64, *, notify_saves: bool = False) -> None:
        self._client = client
        self._notify_saves = notify_saves  # a change seen on disk was saved: rust-analyzer may check it
        self._max_open = max(1, max_open)
        self._docs: OrderedDict[Path, _Doc] = OrderedDict()
        self._lock = anyio.Lock()
        self.sent_changes = 0

    def __len__(self) -> int:
        return len(self._docs)

    def paths(self) -> list[Path]:
        return list(self._docs)

    async def sync(self, path: Path) -> str:
        """Bring every open document up to date, open `path` if needed; return its URI."""
        async with self._lock:
            await self._refresh()
            doc = self._docs.get(path)
            if doc is None:
                read = await anyio.to_thread.run_sync(_read, path)
                if read is None:
                    raise InvalidArgument("file_path", f"{path} does not exist")
                doc = await self._open(path, *read)
            self._docs.move_to_end(path)
            while len(self._docs) > self._max_open:
                _, closing = self._docs.popitem(last=False)
                await self._client.notify(DID_CLOSE, {"textDocument": {"uri": closing.uri}})
            return doc.uri

    async def _refresh(self) -> None:
        if not self._docs:
            return
        stats = await anyio.to_thread.run_sync(_stat_all, list(self._docs))
        for path, stat in stats.items():
            doc = self._docs[path]
            if stat == doc.stat:
                continue
            read = None if stat is None else await anyio.to_thread.run_sync(_read, path)
            if read is None:  # vanished: rust-analyzer should go back to the (absent) disk file
                del self._docs[path]
                await self._client.notify(DID_CLOSE, {"textDocument": {"uri": doc.uri}})
                continue
            new_stat, data = read
            digest = xxhash.xxh3_64_intdigest(data)
            doc.stat = new_stat
            if digest != doc.digest:
                doc.digest = digest
                doc.version += 1
                self.sent_changes += 1
                await self._client.notify(
                    DID_CHANGE,
                    {
                        "textDocument": {"uri": doc.uri, "version": doc.version},
                        "contentChanges": [{"text": data.decode("utf-8", errors="replace")}],
                    },
                )
                if self._notify_saves:
                    await self._client.notify(DID_SAVE, {"textDocument": {"uri": doc.uri}})

    async def _open(self, path: Path, stat: StatKey, data: bytes) -> _Doc:
        doc = _Doc(uri=path.as_uri(), version=1, stat=stat, digest=xxhash.xxh3_64_intdigest(data))
        self._docs[path] = doc
        await self._client.notify(
            DID_OPEN,
            {
                "textDocument": {
                    "uri": doc.uri,
                    "languageId": "rust",
                    "version": doc.version,
                    "text": data.decode("utf-8", errors="replace"),
                }
            },
        )
        return doc

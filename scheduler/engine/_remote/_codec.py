"""What a shared entry looks like on the wire: namespaced key, checksum, optional signature.

The remote tier stores the same JSON dicts as the local cache, framed so that a reader can tell a
value it may serve from anything else that lies under the key:

    CS1 <xxh64 of payload> <hmac-sha256 of key + payload, or -> \\n <zlib(JSON)>

- **Namespaced keys.** Every key is `cargo-scheduler:<FORMAT>:<engine key>`: a release that changes what
  a value means bumps FORMAT, and old entries are simply never asked for again (they expire).
- **Checksum.** A torn or flipped value is a miss, never an answer (as in the local cache).
- **Signature.** With a shared key, the writer signs the payload *together with its key*, so a signed
  value cannot be replayed under another key; a reader holding the key ignores unsigned and badly
  signed entries. Without a key, signatures are not checked (and not written).
- **zlib level 1.** Diagnostics are repetitive JSON: a few times smaller on the wire and in Redis
  memory for a fraction of a millisecond. A payload that inflates past `MAX_VALUE_BYTES` is refused
  (a hostile writer's zip bomb costs nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from typing import Any

import xxhash

FORMAT = "v1"
NAMESPACE = f"cargo-scheduler:{FORMAT}:"
MAGIC = b"CS1"
MAX_VALUE_BYTES = 64 * 1024 * 1024


def remote_key(key: str) -> str:
    return NAMESPACE + key


def encode(rkey: str, value: dict[str, Any], hmac_key: bytes | None) -> bytes:
    payload = zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 1)
    signature = _sign(hmac_key, rkey, payload) if hmac_key is not None else b"-"
    return b" ".join((MAGIC, xxhash.xxh64_hexdigest(payload).encode(), signature)) + b"\n" + payload


def decode(rkey: str, raw: bytes, hmac_key: bytes | None) -> dict[str, Any] | str:
    """The value, or why it is refused (a reader treats a refused entry as a miss)."""
    header, sep, payload = raw.partition(b"\n")
    parts = header.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != MAGIC:
        return "not a cargo-scheduler entry of this format"
    _, checksum, signature = parts
    if xxhash.xxh64_hexdigest(payload).encode() != checksum:
        return "bad checksum"
    if hmac_key is not None:
        if signature == b"-":
            return "unsigned (a signing key is configured)"
        if not hmac.compare_digest(signature, _sign(hmac_key, rkey, payload)):
            return "bad signature"
    try:
        inflater = zlib.decompressobj()
        body = inflater.decompress(payload, MAX_VALUE_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            return "too large or truncated"
        value = json.loads(body)
    except (zlib.error, ValueError):
        return "undecodable"
    return value if isinstance(value, dict) else "not a JSON object"


def _sign(hmac_key: bytes, rkey: str, payload: bytes) -> bytes:
    return hmac.new(hmac_key, rkey.encode() + b"\n" + payload, hashlib.sha256).hexdigest().encode()

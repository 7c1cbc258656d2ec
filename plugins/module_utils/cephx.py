# Copyright: sovstack developers
# Apache License 2.0
"""A Ceph key as Ceph encodes it (CryptoKey): little-endian type (1, AES), creation time in
seconds and nanoseconds, the secret's length, then the 16-byte secret; base64 of all that.
`sovstack secrets generate` makes new keys with it, the filters derive and check keys with it."""

from __future__ import annotations

import base64
import struct

HEADER = "<HIIH"
AES = 1
SECRET_BYTES = 16


def encode(secret: bytes, created_ns: int) -> str:
    """The key of SECRET (16 bytes), made at CREATED_NS nanoseconds since the epoch."""
    header = struct.pack(HEADER, AES, created_ns // 10**9, created_ns % 10**9, len(secret))
    return base64.b64encode(header + secret).decode()


def secret(key: str) -> bytes:
    """The 16-byte secret of a key; ValueError when KEY is not a Ceph key."""
    raw = base64.b64decode(key, validate=True)
    size = struct.calcsize(HEADER)
    if len(raw) != size + SECRET_BYTES or struct.unpack(HEADER, raw[:size])[0] != AES:
        raise ValueError("not an AES key of 16 bytes")
    return raw[size:]

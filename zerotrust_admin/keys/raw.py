"""Shared code for sources that hold the 32-byte master key in memory."""

from __future__ import annotations

import base64
import binascii

from zerotrust_admin.crypto import KEY_SIZE, DecryptionFailed, open_sealed, seal
from zerotrust_admin.errors import UsageError
from zerotrust_admin.keys.base import UnwrapFailed
from zerotrust_admin.secret import Secret


class RawKeySource:
    kind = "raw"

    def __init__(self, key: Secret, key_id: str, location: str):
        if len(key) != KEY_SIZE:
            raise UsageError("a master key must be exactly 32 bytes")
        self._key = key
        self.key_id = key_id
        self.location = location

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        return seal(self._key.reveal(), plaintext, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return open_sealed(self._key.reveal(), blob, aad)
        except DecryptionFailed:
            raise UnwrapFailed() from None

    def describe(self) -> dict:
        return {"kind": self.kind, "location": self.location}

    def close(self) -> None:
        self._key.wipe()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(location={self.location!r}, key=<redacted>)"


# A new key never opens an existing vault: the way out of a damaged key is the backup (issue 14).
DAMAGED_KEY_HINT = ("restore the key from your backup of it; a newly generated key cannot open an existing vault "
                    "(lost for good: restore a vault backup into a new vault, docs/backup.md)")


def decode_key_text(data: bytes, what: str) -> Secret:
    """A key is given as base64 text (one line) or as 32 raw bytes."""
    stripped = data.strip()
    if len(data) == KEY_SIZE and len(stripped) != 44:
        return Secret(data)
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{what} is not a base64-encoded 32-byte key", hint=DAMAGED_KEY_HINT) from None
    if len(raw) != KEY_SIZE:
        raise UsageError(f"{what} decodes to {len(raw)} bytes; a master key is 32 bytes", hint=DAMAGED_KEY_HINT)
    return Secret(raw)

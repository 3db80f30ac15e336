"""AES-256-GCM sealing with bound associated data.

A sealed blob is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``. Every
way opening can fail raises the one ``DecryptionFailed`` type, so callers can
never tell a wrong key from a flipped bit by the exception alone (they use a
key check value for that).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


class DecryptionFailed(Exception):
    """The blob does not authenticate under this key and associated data."""


def random_key() -> bytes:
    return os.urandom(KEY_SIZE)


def seal(key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None) -> bytes:
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    if len(blob) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionFailed()
    try:
        return AESGCM(key).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
    except InvalidTag:
        raise DecryptionFailed() from None

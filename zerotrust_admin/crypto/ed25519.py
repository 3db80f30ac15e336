"""Ed25519 signatures: audit checkpoints, signed backups, evidence bundles.

Raw 32-byte keys in and out; the key files and the PKCS#11 variant live in
``zerotrust_admin.signing``. Imported lazily (``cryptography``'s asymmetric
modules cost start-up time that ``vault get`` must not pay).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64


class SignatureInvalid(Exception):
    """A signature, or the public key it is checked with, is not valid. One
    type for every way verification fails, so failures leak nothing."""


def ed25519_generate() -> tuple[bytes, bytes]:
    """A new (private seed, public key) pair, 32 raw bytes each."""
    private = Ed25519PrivateKey.generate()
    # The *_raw() accessors avoid importing cryptography's serialization
    # module (~12 ms on every audited command).
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def ed25519_public(private: bytes) -> bytes:
    if len(private) != ED25519_KEY_SIZE:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def ed25519_sign(private: bytes, message: bytes) -> bytes:
    if len(private) != ED25519_KEY_SIZE:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(private).sign(message)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> None:
    """Raises SignatureInvalid unless ``signature`` is ``public``'s over ``message``."""
    if len(public) != ED25519_KEY_SIZE or len(signature) != ED25519_SIGNATURE_SIZE:
        raise SignatureInvalid()
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureInvalid() from None


def key_id(public: bytes) -> str:
    """Short public identifier of a signing key: the first 8 bytes of its SHA-256, hex."""
    return hashlib.sha256(public).digest()[:8].hex()

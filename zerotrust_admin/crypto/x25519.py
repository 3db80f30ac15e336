"""X25519 key agreement and HKDF-SHA256, for key-encryption keys (KEKs).

Used by encrypted backups: a backup for a recipient is encrypted under a KEK
derived from an ephemeral-static X25519 exchange (the recipient keeps the
static private key), the same shape as age's X25519 recipients.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

X25519_KEY_SIZE = 32


class KeyAgreementFailed(Exception):
    """The peer public key is invalid (wrong length or a low-order point)."""


def x25519_generate() -> tuple[bytes, bytes]:
    """A new (private, public) key pair, 32 raw bytes each."""
    private = X25519PrivateKey.generate()
    return (
        private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


def x25519_public(private: bytes) -> bytes:
    if len(private) != X25519_KEY_SIZE:
        raise KeyAgreementFailed()
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519_shared(private: bytes, peer_public: bytes) -> bytes:
    if len(private) != X25519_KEY_SIZE or len(peer_public) != X25519_KEY_SIZE:
        raise KeyAgreementFailed()
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:  # all-zero output: a low-order peer point
        raise KeyAgreementFailed() from None
    if shared == bytes(X25519_KEY_SIZE):
        raise KeyAgreementFailed()
    return shared


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)

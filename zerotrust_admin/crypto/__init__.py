"""The only package that touches ``cryptography.hazmat``.

Formats built on these primitives are documented in docs/vault-format.md and
docs/audit-format.md and pinned by known-answer vectors in tests/.
"""

from zerotrust_admin.crypto.aead import (
    KEY_SIZE,
    NONCE_SIZE,
    DecryptionFailed,
    open_sealed,
    random_key,
    seal,
)
from zerotrust_admin.crypto.kdf import ScryptParams, derive_key
from zerotrust_admin.crypto.mac import hmac_sha256, hmac_sha256_states, constant_time_equal

_LAZY_X25519 = {"KeyAgreementFailed", "hkdf_sha256", "x25519_generate", "x25519_public", "x25519_shared"}


def __getattr__(name: str):
    # X25519 and HKDF are only needed for backups; importing them costs ~25 ms
    # on every start (credential_process calls us for every AWS CLI command).
    if name in _LAZY_X25519:
        from zerotrust_admin.crypto import x25519

        return getattr(x25519, name)
    raise AttributeError(name)

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "DecryptionFailed",
    "ScryptParams",
    "constant_time_equal",
    "derive_key",
    "hmac_sha256",
    "hmac_sha256_states",
    "open_sealed",
    "random_key",
    "seal",
    "KeyAgreementFailed",
    "hkdf_sha256",
    "x25519_generate",
    "x25519_public",
    "x25519_shared",
]

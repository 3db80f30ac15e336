"""The encrypted credentials cache, a layer over the session store's blob cache.

Entry (namespace ``aws-creds``), docs/aws-credentials.md "Cache design"::

    key   = "u" + H(user)[:32] + ":r" + H(request identity)[:32]     (hex SHA-256)
    blob  = "ZC1" || key_version (4 bytes BE) || expiry (8 bytes BE, POSIX s) || AES-256-GCM(nonce || ct || tag)
    AAD   = "zt-credcache-v1\\n" user "\\n" request identity "\\n" expiry "\\n" key_version

The cache key is the vault secret ``_zerotrust/cred-cache-key`` (32 random
bytes, created on first use; its version is in the blob, so a re-created key
never makes older entries look tampered). The user and the role are in the
AAD: an entry copied under another user's or role's key does not
authenticate. The entry's TTL in the store ends ``safety_margin`` seconds
before the credentials expire, and a read re-checks that window with the
injectable clock, so expired credentials are never served even by a store
whose own expiry lags. Entry names carry only hashes: purging a user
(``revoke-credentials``) deletes by prefix and never decrypts anything.

A blob that does not authenticate (tampered, copied across users, unknown key
version) is a miss, is deleted, and is audited (``credential_issue``,
``success: false``); it is never served.
"""

from __future__ import annotations

import hashlib
import struct
import time
from typing import Callable

from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.crypto import KEY_SIZE, DecryptionFailed, open_sealed, random_key, seal
from zerotrust_admin.errors import NotFoundError

NAMESPACE = "aws-creds"
KEY_NAME = "_zerotrust/cred-cache-key"
MAGIC = b"ZC1"
_HEADER = struct.Struct(">4sIQ")  # magic padded to 4, key version, expiry
AAD_PREFIX = b"zt-credcache-v1\n"

# (version or None for the current one) -> (32-byte key, version)
KeyProvider = Callable[[int | None], tuple[bytes, int]]


def _h(kind: bytes, value: str) -> str:
    return hashlib.sha256(b"zt-credcache-" + kind + b"\n" + value.encode("utf-8")).hexdigest()[:32]


def user_prefix(user: str) -> str:
    return f"u{_h(b'user', user)}:"


def entry_key(user: str, request_id: str) -> str:
    return f"{user_prefix(user)}r{_h(b'request', request_id)}"


def aad(user: str, request_id: str, expiry: int, version: int) -> bytes:
    return AAD_PREFIX + f"{user}\n{request_id}\n{expiry}\n{version}".encode("utf-8")


class CacheRejected(Exception):
    """An entry that is present but must not be served."""


class VaultKeyProvider:
    """The cache key from the integrated vault, created on first use."""

    def __init__(self, vault):
        self.vault = vault
        self._keys: dict[int, bytes] = {}
        self._current: int | None = None

    def __call__(self, version: int | None) -> tuple[bytes, int]:
        if version is None and self._current is not None:
            return self._keys[self._current], self._current
        if version is not None and version in self._keys:
            return self._keys[version], version
        try:
            secret, info = self.vault.get(KEY_NAME, version)
        except NotFoundError:
            if version is not None:
                raise
            self.vault.put(KEY_NAME, random_key(), metadata={"purpose": "aws credentials cache key"})
            secret, info = self.vault.get(KEY_NAME)  # the current one, if another process raced us
        with secret:
            key = secret.reveal()
        if len(key) != KEY_SIZE:
            raise CacheRejected("cache key has the wrong size")
        self._keys[info.version] = key
        if version is None:
            self._current = info.version
        return key, info.version


class CredentialCache:
    def __init__(self, store, keys: KeyProvider, *, margin: float = 300.0, clock: Callable[[], float] = time.time,
                 on_reject: Callable[[str, str], None] | None = None):
        self.store = store
        self.keys = keys
        self.margin = float(margin)
        self.clock = clock
        self.on_reject = on_reject  # (entry key, reason) -> audit it

    def get(self, user: str, request_id: str) -> Credentials | None:
        name = entry_key(user, request_id)
        blob = self.store.cache_get(NAMESPACE, name)
        if blob is None:
            return None
        try:
            creds = self._open(user, request_id, bytes(blob))
        except CacheRejected as exc:
            self._reject(name, str(exc))
            return None
        if creds is None:  # within the safety margin or past expiry: a plain miss
            self.store.cache_delete(NAMESPACE, name)
        return creds

    def _open(self, user: str, request_id: str, blob: bytes) -> Credentials | None:
        if len(blob) < _HEADER.size or blob[:4] != MAGIC + b"\0":
            raise CacheRejected("malformed entry")
        _, version, expiry = _HEADER.unpack_from(blob)
        if self.clock() >= expiry - self.margin:
            return None
        try:
            key, _ = self.keys(version)
        except NotFoundError:
            raise CacheRejected("unknown cache key version") from None
        try:
            plaintext = open_sealed(key, blob[_HEADER.size:], aad(user, request_id, expiry, version))
        except DecryptionFailed:
            raise CacheRejected("entry does not authenticate (tampered, or another user's or role's entry)") from None
        creds = Credentials.from_cache_bytes(plaintext)
        if int(creds.expiration.timestamp()) != expiry:
            raise CacheRejected("entry expiry does not match its contents")
        return creds

    def _reject(self, name: str, reason: str) -> None:
        try:
            self.store.cache_delete(NAMESPACE, name)
        finally:
            if self.on_reject is not None:
                self.on_reject(name, reason)

    def put(self, user: str, request_id: str, creds: Credentials) -> bool:
        """Store ``creds``; False when they expire too soon to be worth caching."""
        expiry = int(creds.expiration.timestamp())
        ttl = expiry - self.margin - self.clock()
        if ttl <= 0:
            return False
        key, version = self.keys(None)
        sealed = seal(key, creds.to_cache_bytes(), aad(user, request_id, expiry, version))
        self.store.cache_put(NAMESPACE, entry_key(user, request_id), _HEADER.pack(MAGIC + b"\0", version, expiry) + sealed, ttl)
        return True

    def purge_user(self, user: str) -> int:
        """Delete every cached entry of ``user`` by name prefix (nothing is decrypted)."""
        return self.store.cache_delete_prefix(NAMESPACE, user_prefix(user))


def purge_user(store, user: str) -> int:
    return store.cache_delete_prefix(NAMESPACE, user_prefix(user))


__all__ = ["CacheRejected", "CredentialCache", "KEY_NAME", "NAMESPACE", "VaultKeyProvider", "entry_key", "purge_user", "user_prefix"]

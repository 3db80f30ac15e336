"""Secret heads: the MACed record of what a read returns."""

from __future__ import annotations

from zerotrust_admin.crypto import constant_time_equal, hmac_sha256
from zerotrust_admin.errors import IntegrityError
from zerotrust_admin.keys import UnwrapFailed
from zerotrust_admin.vault import format as fmt


class HeadsMixin:
    # --- secret heads: current version, sensitive, deleted, under a MAC ---------
    def _head_key(self) -> bytes:
        wrapped = self._meta[fmt.META_HEAD_KEY]
        if self._head_key_cache is None or self._head_key_cache[0] != wrapped:
            try:
                key = self._key_source.unwrap(bytes.fromhex(wrapped), fmt.head_key_aad(self.vault_id, self.master_key_id))
            except (UnwrapFailed, ValueError):
                raise IntegrityError("the vault's head key does not authenticate (tampered vault)", hint="restore the vault from a backup") from None
            self._head_key_cache = (wrapped, key)
        return self._head_key_cache[1]

    def _head_mac(self, name: str, version: int, sensitive: bool, deleted_at: str | None) -> str:
        return hmac_sha256(self._head_key(), fmt.head_mac_input(self.vault_id, name, version, sensitive, deleted_at)).hex()

    def _check_head(self, name: str, version: int, sensitive, deleted_at: str | None, mac: str) -> None:
        expected = self._head_mac(name, version, bool(sensitive), deleted_at)
        if not isinstance(mac, str) or not constant_time_equal(expected.encode(), mac.encode()):
            raise IntegrityError(f"secret {name!r}: its record (current version, flags) does not authenticate (tampered vault)",
                                 hint="restore the vault from a backup")


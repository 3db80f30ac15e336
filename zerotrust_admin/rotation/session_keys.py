"""The session key ring the broker signs sessions with: a current key and the
previous one, so a session signed just before a rotation stays valid until it
expires (a rotation happens at most every ``session_hours``; keep session
lifetimes below that). The keys live in the vault, wrapped by the master key.

Python API for the broker::

    from zerotrust_admin.rotation import SessionKeyRing
    ring = SessionKeyRing.open()               # the configured vault
    token = ring.sign(b"session-id|user|expiry")      # "kid.mac"
    ring.verify(b"session-id|user|expiry", token)     # True/False
    kid, key = ring.current()                  # (id, Secret) for own MACs
"""

from __future__ import annotations

import base64

from zerotrust_admin.crypto import constant_time_equal, hmac_sha256
from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.secret import Secret

SIGN_PREFIX = b"zt-session-v1\n"


class SessionKeyRing:
    def __init__(self, vault, *, owns_vault: bool = False):
        self._vault = vault
        self._owns = owns_vault
        self._cache: dict[str, Secret] = {}

    @classmethod
    def open(cls, config=None) -> "SessionKeyRing":
        """Open the integrated vault of ``config`` (default: the usual lookup)."""
        import os

        from zerotrust_admin.config import load_config
        from zerotrust_admin.keys import KeySourceContext, open_configured_source
        from zerotrust_admin.vault import Vault

        config = config or load_config()
        kctx = KeySourceContext(config=config.data, home=config.home, environ=dict(os.environ))
        vault = Vault.open(config.vault_path, lambda kind, params: open_configured_source(kctx, kind, params))
        return cls(vault, owns_vault=True)

    def close(self) -> None:
        for key in self._cache.values():
            key.wipe()
        self._cache.clear()
        if self._owns:
            self._vault.close()

    def __enter__(self) -> "SessionKeyRing":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ids(self) -> list[str]:
        """Current first, then previous."""
        infos = sorted(self._vault.session_keys(), key=lambda k: k.state != "current")
        return [k.id for k in infos]

    def current(self) -> tuple[str, Secret]:
        """The signing key; created on first use if the ring is empty."""
        current = [k for k in self._vault.session_keys() if k.state == "current"]
        if not current:
            self._vault.rotate_session_key(only_if_missing=True)
            current = [k for k in self._vault.session_keys() if k.state == "current"]
        return current[0].id, self.get(current[0].id)

    def get(self, key_id: str) -> Secret:
        if key_id not in self._cache:
            self._cache[key_id] = self._vault.session_key(key_id)
        return self._cache[key_id]

    def sign(self, payload: bytes) -> str:
        kid, key = self.current()
        mac = hmac_sha256(key.reveal(), SIGN_PREFIX + payload)
        return f"{kid}.{base64.urlsafe_b64encode(mac).decode('ascii').rstrip('=')}"

    def verify(self, payload: bytes, token: str) -> bool:
        kid, _, mac_text = token.partition(".")
        if kid not in self.ids():
            return False
        try:
            key = self.get(kid)
            mac = base64.urlsafe_b64decode(mac_text + "=" * (-len(mac_text) % 4))
        except (NotFoundError, ValueError):
            return False
        return constant_time_equal(hmac_sha256(key.reveal(), SIGN_PREFIX + payload), mac)

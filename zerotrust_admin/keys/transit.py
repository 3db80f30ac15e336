"""Master key held by HashiCorp Vault / OpenBao's transit engine.

The key never leaves Vault: ``wrap`` is transit ``encrypt`` and ``unwrap`` is
transit ``decrypt``, both with ``associated_data`` = our AAD (so a wrapped data
key moved to another slot does not unwrap). Blobs are transit ciphertexts
(``vault:v<N>:...``). Rotating the transit key (``rotate_provider_key``) adds a
key version: new wraps use it, older blobs still unwrap, and ``rewrap`` moves
a blob to the newest version.

Config (``encryption.transit``): ``enabled: true``, ``key_name`` (default
``zerotrust-master``), ``mount_path`` (default ``transit``), and the same
connection/auth keys as the hashicorp provider (``url``, ``role_id``,
``secret_id_file``, ``token_file``, ``ca_file``, ``timeout``); any of them
missing is taken from ``secrets.config`` when the provider is hashicorp.
Only the URL, mount and key name are recorded in the vault, never credentials.
"""

from __future__ import annotations

import base64

from zerotrust_admin.errors import ConfigError, UnavailableError, ZeroTrustError
from zerotrust_admin.keys.base import KeySourceContext, UnwrapFailed

DEFAULT_KEY = "zerotrust-master"
DEFAULT_MOUNT = "transit"


def transit_settings(ctx: KeySourceContext, params: dict | None = None) -> dict:
    enc = ctx.config.get("encryption") or {}
    block = dict(enc.get("transit") or {})
    secrets = ctx.config.get("secrets") or {}
    provider = str(secrets.get("provider") or "").lower()
    if provider in ("hashicorp", "hashicorp-vault", "vault", "openbao"):
        for key, value in (secrets.get("config") or {}).items():
            if key not in ("mount_path", "mount"):
                block.setdefault(key, value)
    for key in ("url", "mount", "key_name"):
        if params and params.get(key) and not block.get({"mount": "mount_path"}.get(key, key)):
            block[{"mount": "mount_path"}.get(key, key)] = params[key]
    block.setdefault("mount_path", DEFAULT_MOUNT)
    block.setdefault("key_name", DEFAULT_KEY)
    return block


class _DictConfig:
    def __init__(self, data: dict):
        self.data = data

    def get(self, dotted: str, default=None):
        from zerotrust_admin.config.loader import dotted_get

        return dotted_get(self.data, dotted, default)


class TransitKeySource:
    kind = "transit"

    def __init__(self, ctx: KeySourceContext, settings: dict, key_id: str):
        from zerotrust_admin.providers.base import ProviderContext

        self._pctx = ProviderContext(kind="transit", settings=settings, config=_DictConfig(ctx.config), environ=dict(ctx.environ))
        self.key_id = key_id
        self.url = str(settings.get("url") or ctx.environ.get("VAULT_ADDR") or ctx.environ.get("BAO_ADDR") or "").rstrip("/")
        self.mount = str(settings["mount_path"]).strip("/")
        self.key_name = str(settings["key_name"])
        self._client = None

    def __repr__(self) -> str:
        return f"TransitKeySource(url={self.url!r}, key={self.mount}/keys/{self.key_name})"

    @property
    def client(self):
        if self._client is None:
            from zerotrust_admin.providers.hashicorp import make_client

            self._client = make_client(self._pctx, what="transit key")
        return self._client

    def _call(self, fn, *, unwrap: bool = False):
        from zerotrust_admin.providers.hashicorp import _errors

        try:
            with _errors("transit key", self.url, self._pctx.ca_file(), self._pctx.timeout(), name=f"{self.mount}/keys/{self.key_name}"):
                return fn()
        except UnavailableError:
            raise
        except ZeroTrustError as exc:
            if unwrap and exc.exit_code == 2:  # HTTP 400 from decrypt: the blob does not authenticate
                raise UnwrapFailed() from None
            raise

    # --- KeySource ---------------------------------------------------------------
    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        resp = self._call(lambda: self.client.write(f"{self.mount}/encrypt/{self.key_name}", plaintext=base64.b64encode(plaintext).decode(),
                                                    associated_data=base64.b64encode(aad).decode()))
        return resp["data"]["ciphertext"].encode("ascii")

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            text = blob.decode("ascii")
        except UnicodeDecodeError:
            raise UnwrapFailed() from None
        if not text.startswith("vault:v"):
            raise UnwrapFailed()
        resp = self._call(lambda: self.client.write(f"{self.mount}/decrypt/{self.key_name}", ciphertext=text,
                                                    associated_data=base64.b64encode(aad).decode()), unwrap=True)
        return base64.b64decode(resp["data"]["plaintext"])

    def rewrap(self, blob: bytes, aad: bytes) -> bytes:
        """The same data key wrapped under the newest transit key version.

        Transit's own ``rewrap`` endpoint does not take ``associated_data``
        (OpenBao 2.7), so this is decrypt + encrypt: the data key passes
        through this process, exactly as it does for every ``unwrap``."""
        key = bytearray(self.unwrap(blob, aad))
        try:
            return self.wrap(bytes(key), aad)
        finally:
            for i in range(len(key)):
                key[i] = 0

    def describe(self) -> dict:
        return {"kind": self.kind, "location": f"{self.url}/v1/{self.mount}/keys/{self.key_name}"}

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.adapter.close()
            except Exception:
                pass
            self._client = None

    # --- provider-side key rotation (rotate-keys / keys status) ----------------------------
    def provider_key_status(self) -> dict:
        data = self._call(lambda: self.client.secrets.transit.read_key(name=self.key_name, mount_point=self.mount))["data"]
        versions = data.get("keys") or {}
        latest = int(data.get("latest_version") or 0)
        created = versions.get(str(latest))
        if isinstance(created, dict):
            created = created.get("creation_time")
        elif isinstance(created, int):
            from datetime import datetime, timezone

            created = datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"provider": "hashicorp", "kind": "transit", "key_id": f"{self.mount}/keys/{self.key_name}", "version": latest,
                "created": created or "", "min_decryption_version": data.get("min_decryption_version"), "state": "active",
                "rotation": "on demand (rotate-keys)"}

    def rotate_provider_key(self, *, dry_run: bool = False) -> dict:
        before = self.provider_key_status()
        if dry_run:
            return dict(before, action="would rotate")
        self._call(lambda: self.client.secrets.transit.rotate_key(name=self.key_name, mount_point=self.mount))
        after = self.provider_key_status()
        return dict(after, action="rotated", previous_version=before["version"])

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, ctx: KeySourceContext, key_id: str) -> tuple["TransitKeySource", dict]:
        settings = transit_settings(ctx)
        source = cls(ctx, settings, key_id)
        if not source.url:
            raise ConfigError("encryption.transit needs a url (or secrets.provider: hashicorp with secrets.config.url)")
        import hvac.exceptions as hx  # noqa: F401  (hvac present: make_client checks)

        def ensure():
            try:
                source.client.secrets.transit.read_key(name=source.key_name, mount_point=source.mount)
            except hx.InvalidPath:
                source.client.secrets.transit.create_key(name=source.key_name, key_type="aes256-gcm96", mount_point=source.mount)

        source._call(ensure)
        return source, {"url": source.url, "mount": source.mount, "key_name": source.key_name}

    @classmethod
    def open(cls, ctx: KeySourceContext, params: dict) -> "TransitKeySource":
        return cls(ctx, transit_settings(ctx, params), params.get("key_id", ""))


def transit_configured(config: dict) -> bool:
    block = (config.get("encryption") or {}).get("transit") or {}
    return bool(block.get("enabled"))

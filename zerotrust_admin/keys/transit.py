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
Everything comes from the configuration. The URL, mount and key name are also
recorded in the vault (never credentials), only to be compared with the
configuration on open (threat-model V1); the HTTP client is zerotrust_admin.vaultapi.
"""

from __future__ import annotations

import base64

from zerotrust_admin.errors import ConfigError, UnavailableError, ZeroTrustError
from zerotrust_admin.keys.base import KeySourceContext, UnwrapFailed

DEFAULT_KEY = "zerotrust-master"
DEFAULT_MOUNT = "transit"
WHAT = "transit key source"
WHERE = "encryption.transit"
HASHICORP_NAMES = ("hashicorp", "hashicorp-vault", "vault", "openbao")


def transit_block(config: dict) -> dict:
    """``encryption.transit`` with what it leaves out taken from ``secrets.config``
    when the secret provider is hashicorp. Configuration only: what a vault
    records about its transit key is compared with this (keys.configured), never used."""
    enc = config.get("encryption") or {}
    block = dict(enc.get("transit") or {})
    secrets = config.get("secrets") or {}
    if str(secrets.get("provider") or "").lower() in HASHICORP_NAMES:
        for key, value in (secrets.get("config") or {}).items():
            if key not in ("mount_path", "mount"):
                block.setdefault(key, value)
    block.setdefault("mount_path", DEFAULT_MOUNT)
    block.setdefault("key_name", DEFAULT_KEY)
    return block


def transit_settings(ctx: KeySourceContext):
    from zerotrust_admin.vaultapi.settings import VaultSettings

    return VaultSettings(transit_block(ctx.config), WHERE, dict(ctx.config.get("tls") or {}), dict(ctx.environ))


def _location(ctx: KeySourceContext) -> dict:
    """{"url", "mount", "key_name"} from the configuration (the URL checked: N1)."""
    settings = transit_settings(ctx)
    url = settings.url()
    if not url:
        raise ConfigError("encryption.transit needs a url (or secrets.provider: hashicorp with secrets.config.url)")
    return {"url": url, "mount": str(settings.block["mount_path"]).strip("/"), "key_name": str(settings.block["key_name"])}


class TransitKeySource:
    kind = "transit"

    def __init__(self, ctx: KeySourceContext, key_id: str):
        self._settings = transit_settings(ctx)
        self.key_id = key_id
        self.url = self._settings.url()  # N1: https, or http to loopback only; exit 2 before any connection
        self.mount = str(self._settings.block["mount_path"]).strip("/")
        self.key_name = str(self._settings.block["key_name"])
        self._client = None

    def __repr__(self) -> str:
        return f"TransitKeySource(url={self.url!r}, key={self.mount}/keys/{self.key_name})"

    @property
    def client(self):
        if self._client is None:
            from zerotrust_admin.vaultapi.client import make_client

            self._client = make_client(self._settings, what=WHAT)
        return self._client

    def _call(self, fn, *, unwrap: bool = False):
        from zerotrust_admin.vaultapi.client import api_errors

        try:
            with api_errors(WHAT, self.url, self._settings.ca_file(), self._settings.timeout(), name=f"{self.mount}/keys/{self.key_name}", where=WHERE):
                return fn()
        except UnavailableError:
            raise
        except ZeroTrustError as exc:
            if unwrap and exc.exit_code == 2:  # HTTP 400 from decrypt: the blob does not authenticate
                raise UnwrapFailed() from None
            raise

    # --- KeySource ---------------------------------------------------------------
    def _parsed(self):
        from zerotrust_admin.vaultapi.client import parsed

        return parsed(WHAT, self.url)

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        resp = self._call(lambda: self.client.write(f"{self.mount}/encrypt/{self.key_name}", plaintext=base64.b64encode(plaintext).decode(),
                                                    associated_data=base64.b64encode(aad).decode()))
        with self._parsed():
            ciphertext = resp["data"]["ciphertext"]
            if not isinstance(ciphertext, str) or not ciphertext.startswith("vault:v"):
                raise ValueError("not a transit ciphertext")
            return ciphertext.encode("ascii")

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            text = blob.decode("ascii")
        except UnicodeDecodeError:
            raise UnwrapFailed() from None
        if not text.startswith("vault:v"):
            raise UnwrapFailed()
        resp = self._call(lambda: self.client.write(f"{self.mount}/decrypt/{self.key_name}", ciphertext=text,
                                                    associated_data=base64.b64encode(aad).decode()), unwrap=True)
        with self._parsed():
            return base64.b64decode(resp["data"]["plaintext"], validate=True)

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
        resp = self._call(lambda: self.client.secrets.transit.read_key(name=self.key_name, mount_point=self.mount))
        with self._parsed():
            data = resp["data"]
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
    def configured_location(cls, ctx: KeySourceContext) -> dict | None:
        """What the configuration says about the transit key (None: transit not enabled)."""
        return _location(ctx) if transit_configured(ctx.config) else None

    @classmethod
    def create(cls, ctx: KeySourceContext, key_id: str) -> tuple["TransitKeySource", dict]:
        source = cls(ctx, key_id)
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
        """The configured transit key; from ``params`` (the vault's records) only
        the key id. keys.open_configured_source has already checked that the
        recorded URL, mount and key name agree with the configuration."""
        source = cls(ctx, params.get("key_id", ""))
        if not source.url:
            raise ConfigError("encryption.transit needs a url (or secrets.provider: hashicorp with secrets.config.url)")
        return source


def transit_configured(config: dict) -> bool:
    block = (config.get("encryption") or {}).get("transit") or {}
    return bool(block.get("enabled"))

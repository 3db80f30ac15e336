"""One Vault connection block, read the same way by the hashicorp provider
(``secrets.config``) and the transit key source (``encryption.transit``).

Keys: ``url`` (alias ``address``/``addr``; else VAULT_ADDR / BAO_ADDR),
``namespace``, ``timeout`` (seconds, default 5), ``ca_file`` or
``tls: {ca_file, verify, min_version, ciphers, cert_file, key_file}``
(the top-level ``tls`` block is the default), ``auth_method`` (``approle`` or
``token``), ``role_id``/``secret_id`` (each also ``*_file``, VAULT_ROLE_ID /
VAULT_SECRET_ID), ``token`` (``token_file``, VAULT_TOKEN / BAO_TOKEN),
``approle_mount`` (default ``approle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.secret import Secret
from zerotrust_admin.vaultapi.endpoint import check_url

DEFAULT_TIMEOUT = 5.0  # seconds: connect and read, per request


@dataclass
class VaultSettings:
    block: dict
    where: str                 # the config path of ``block``, for messages: "secrets.config"
    tls: dict = field(default_factory=dict)   # the top-level ``tls`` policy
    environ: dict = field(default_factory=dict)

    @classmethod
    def from_provider_context(cls, pctx, where: str = "secrets.config") -> "VaultSettings":
        """From a providers.base.ProviderContext (duck-typed: settings, config, environ)."""
        config = pctx.config
        tls = config.section("tls") if hasattr(config, "section") else (getattr(config, "get", lambda *_: None)("tls") or {})
        return cls(dict(pctx.settings or {}), where, dict(tls or {}), dict(pctx.environ or {}))

    def setting(self, *keys: str, default=None):
        for key in keys:
            value = self.block.get(key)
            if value not in (None, ""):
                return value
        return default

    def url(self) -> str:
        """The endpoint, checked (N1: https, or http to loopback only). Empty when none is configured."""
        raw = self.setting("url", "address", "addr") or self.environ.get("VAULT_ADDR") or self.environ.get("BAO_ADDR")
        return check_url(str(raw), f"{self.where}.url") if raw else ""

    def require_url(self) -> str:
        url = self.url()
        if not url:
            raise ConfigError(f"{self.where}.url is not set", hint="e.g. url: https://vault.example.com:8200")
        return url

    def namespace(self) -> str | None:
        return self.setting("namespace")

    def approle_mount(self) -> str:
        return str(self.setting("approle_mount", "auth_mount", default="approle"))

    def timeout(self) -> float:
        raw = self.block.get("timeout", self.block.get("timeout_seconds", DEFAULT_TIMEOUT))
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.where}.timeout must be a number of seconds, not {raw!r}") from None
        if not 0 < value <= 300:
            raise ConfigError(f"{self.where}.timeout must be between 0 and 300 seconds")
        return value

    def secret(self, key: str, *env_names: str) -> Secret | None:
        """``key`` (literal or ``${VAR}``), ``key_file``, else the named environment variables."""
        value = self.block.get(key)
        if isinstance(value, str) and value.startswith("vault:"):
            raise ConfigError(f"{self.where}.{key} cannot be a vault: reference (Vault would need itself to start)",
                              hint=f"use {key}_file or an environment variable")
        if value not in (None, ""):
            return Secret(str(value))
        path = self.block.get(key + "_file")
        if path:
            from zerotrust_admin.config.loader import read_secret_file

            return Secret(read_secret_file(Path(str(path)).expanduser(), f"{self.where}.{key}_file"))
        for env in env_names:
            if self.environ.get(env):
                return Secret(self.environ[env])
        return None

    def ca_file(self) -> str | None:
        tls = self.block.get("tls")
        if isinstance(tls, dict) and tls.get("ca_file"):
            return str(tls["ca_file"])
        if self.block.get("ca_file"):
            return str(self.block["ca_file"])
        if isinstance(tls, str) and tls:
            return tls
        return str(self.tls["ca_file"]) if self.tls.get("ca_file") else None

    def tls_verify(self) -> bool:
        tls = self.block.get("tls")
        if isinstance(tls, dict) and tls.get("verify") is False:
            return False
        return self.block.get("tls_verify", True) is not False

    def tls_policy(self) -> dict:
        """The top-level ``tls`` policy with this block's CA and verification:
        the ``config`` argument of the zerotrust_admin.tlspolicy helpers."""
        merged = dict(self.tls or {})
        own = self.block.get("tls")
        if isinstance(own, dict):
            merged.update({k: v for k, v in own.items() if k in ("min_version", "ciphers", "cert_file", "key_file")})
        ca = self.ca_file()
        if ca:
            merged["ca_file"] = ca
        merged["verify"] = self.tls_verify()
        return {"tls": merged}

    def auth(self, what: str):
        """(method, role_id, secret_id, token): which login the block asks for."""
        method = str(self.setting("auth_method", "auth", default="") or "").lower()
        role_id = self.secret("role_id", "VAULT_ROLE_ID")
        secret_id = self.secret("secret_id", "VAULT_SECRET_ID")
        token = self.secret("token", "VAULT_TOKEN", "BAO_TOKEN")
        if method == "token" or (not method and token is not None and role_id is None):
            if token is None:
                raise ConfigError(f"the {what} uses token auth but no token is configured", hint=f"set {self.where}.token_file, or VAULT_TOKEN in the environment")
            return "token", None, None, token
        if role_id is None or secret_id is None:
            raise ConfigError(f"the {what} needs role_id and secret_id (AppRole) or a token",
                              hint=f"set role_id / secret_id_file in {self.where}, or VAULT_ROLE_ID / VAULT_SECRET_ID")
        return "approle", role_id, secret_id, None

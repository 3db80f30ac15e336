"""``SecretManager`` and ``ConfigLoader``: the library entry points the broker uses."""

from __future__ import annotations

import os

from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.aws.runtime import Runtime
from zerotrust_admin.secret import Secret


def _resolver(config, runtime: Runtime):
    """``vault:NAME`` references in the config, resolved through the configured secret provider."""
    state: dict = {}

    def resolve(name: str) -> Secret:
        if "provider" not in state:
            from zerotrust_admin.providers import open_provider

            state["provider"] = open_provider(config.provider, config, audit=runtime.audit, actor=runtime.actor,
                                              open_local_vault=runtime.vault, environ=config.environ)
        secret, _info = state["provider"].get(name)
        return secret

    return resolve


class ConfigLoader:
    @staticmethod
    def load(config_file: str | os.PathLike | None = None, secrets_provider: str | None = None,
             secrets_config: dict | None = None, *, environ: dict | None = None):
        """The effective configuration (``zerotrust_admin.config.Config``).

        ``config_file``: an explicit path (else the usual lookup: $ZEROTRUST_CONFIG,
        $XDG_CONFIG_HOME/zerotrust/config.yaml, /etc/zerotrust/config.yaml).
        ``secrets_provider`` / ``secrets_config`` replace the file's ``secrets``
        section. ``get_secret("redis.password")`` then resolves, in order, the
        ZEROTRUST_REDIS_PASSWORD override or the value, ``redis.password_file``,
        or a ``vault:NAME`` value through the secret provider.
        """
        from zerotrust_admin.config import load_config
        from zerotrust_admin.errors import ConfigError

        config = load_config(config_file, environ)
        if secrets_provider is not None or secrets_config is not None:
            from zerotrust_admin.providers import canonical

            section = dict(config.data.get("secrets") or {})
            if secrets_provider is not None:
                section["provider"] = canonical(secrets_provider)
            if secrets_config is not None:
                if not isinstance(secrets_config, dict):
                    raise ConfigError("secrets_config must be a dict of the provider's settings")
                section["config"] = dict(secrets_config)
            config.data["secrets"] = section
        config.secret_resolver = _resolver(config, Runtime(config, environ=config.environ))
        return config


class SecretManager:
    """AWS credentials and secrets for one principal, with the CLI's guarantees
    (cache, audit, allow-list). Use it as a context manager, or call ``close()``."""

    def __init__(self, config=None, *, config_file: str | os.PathLike | None = None, environ: dict | None = None):
        if config is None:
            config = ConfigLoader.load(config_file=config_file, environ=environ)
        self.config = config
        self._runtime = Runtime(config, environ=config.environ)

    def get_aws_credentials(self, role_arn: str, *, external_id: str | None = None, via: list[str] | None = None,
                            duration_seconds: int | None = None, use_cache: bool = True) -> Credentials:
        """STS credentials for the operator principal (ZEROTRUST_PRINCIPAL, the Kerberos
        ticket, or the OS user), served from the encrypted cache while valid.
        The result is a context manager that wipes the secret parts on exit."""
        from zerotrust_admin.aws.service import get_credentials

        return get_credentials(self._runtime, role_arn, external_id=external_id, via=via or (), duration=duration_seconds,
                               use_cache=use_cache)

    def get_secret(self, name: str) -> Secret:
        """A secret from the configured provider (audited), as a wipeable ``Secret``."""
        from zerotrust_admin.providers import open_provider

        provider = open_provider(self.config.provider, self.config, audit=self._runtime.audit, actor=self._runtime.actor,
                                 open_local_vault=self._runtime.vault, environ=self.config.environ)
        try:
            secret, _info = provider.get(name)
        finally:
            provider.close()
        return secret

    def close(self) -> None:
        self._runtime.close()

    def __enter__(self) -> "SecretManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SecretManager(config={self.config!r})"

"""``SecretManager`` and ``ConfigLoader``: the library entry points the broker uses.

Secret reads go through the CLI's ``AccessGuard`` (access policies, then MFA
for sensitive secrets) with the API caller's principal (``Runtime.actor``), so
a denial raises the same ``DeniedError`` (exit code 4) and leaves the same
``access_denied`` / ``mfa`` audit records as ``vault get``. The API never
prompts: an MFA code comes from the caller (``otp=`` / ``otp_source=``) or
``$ZEROTRUST_OTP``.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.aws.runtime import Runtime
from zerotrust_admin.secret import Secret

OtpSource = Callable[[], "str | None"]


def _codes(otp: str | None, otp_source: OtpSource | None, environ: Mapping[str, str] | None) -> OtpSource:
    """Where an MFA code comes from, asked only when a read needs one: ``otp``,
    else ``otp_source()``, else $ZEROTRUST_OTP read at that moment (so a
    caller may set it late). Never a prompt: the API may run without a terminal."""
    if otp is not None and otp_source is not None:
        from zerotrust_admin.errors import UsageError

        raise UsageError("give the MFA code once: otp or otp_source, not both")

    def get() -> str | None:
        from zerotrust_admin.mfa import OTP_ENV

        if otp is not None:
            code = otp
        elif otp_source is not None:
            code = otp_source()
        else:
            code = (os.environ if environ is None else environ).get(OTP_ENV)
        return (code or "").strip() or None

    get.missing_hint = "pass otp=... (or otp_source=...), or set ZEROTRUST_OTP"
    return get


def _guard(config, runtime: Runtime, otp_source: OtpSource):
    """A fresh guard per read: one MFA code proves one read, never the
    lifetime of a long-lived SecretManager (the CLI's guard lives for one
    command)."""
    from zerotrust_admin.access.guard import AccessGuard

    return AccessGuard(config, runtime.actor, runtime.audit, code_source=otp_source, open_local_vault=runtime.vault)


def _resolver(config, runtime: Runtime, otp_source: OtpSource):
    """``vault:NAME`` references in the config, resolved through the configured
    secret provider, under the access policies and MFA like ``vault get``."""
    state: dict = {}

    def resolve(name: str) -> Secret:
        if "provider" not in state:
            from zerotrust_admin.providers import open_provider

            state["provider"] = open_provider(config.provider, config, audit=runtime.audit, actor=runtime.actor,
                                              open_local_vault=runtime.vault, environ=config.environ)
        provider = state["provider"]
        provider.guard = _guard(config, runtime, otp_source)
        secret, _info = provider.get(name)
        return secret

    return resolve


class ConfigLoader:
    @staticmethod
    def load(config_file: str | os.PathLike | None = None, secrets_provider: str | None = None,
             secrets_config: dict | None = None, *, environ: dict | None = None, otp_source: OtpSource | None = None):
        """The effective configuration (``zerotrust_admin.config.Config``).

        ``config_file``: an explicit path (else the usual lookup: $ZEROTRUST_CONFIG,
        $XDG_CONFIG_HOME/zerotrust/config.yaml, /etc/zerotrust/config.yaml).
        ``secrets_provider`` / ``secrets_config`` replace the file's ``secrets``
        section. ``get_secret("redis.password")`` then resolves, in order, the
        ZEROTRUST_REDIS_PASSWORD override or the value, ``redis.password_file``,
        or a ``vault:NAME`` value through the secret provider, checked against
        ``access.policies`` (read) and, for a sensitive secret, MFA: the code
        comes from ``otp_source()`` or ``$ZEROTRUST_OTP``; without one,
        ``DeniedError``. A malformed policy raises ``ConfigError`` here.
        """
        from zerotrust_admin.access.settings import validate_security_settings
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
        validate_security_settings(config)
        config.secret_resolver = _resolver(config, Runtime(config, environ=config.environ), _codes(None, otp_source, environ))
        return config


class SecretManager:
    """AWS credentials and secrets for one principal, with the CLI's guarantees
    (cache, audit, allow-list). Use it as a context manager, or call ``close()``."""

    def __init__(self, config=None, *, config_file: str | os.PathLike | None = None, environ: dict | None = None):
        if config is None:
            config = ConfigLoader.load(config_file=config_file, environ=environ)
        self.config = config
        self._environ = environ
        self._runtime = Runtime(config, environ=config.environ)

    def get_aws_credentials(self, role_arn: str, *, external_id: str | None = None, via: list[str] | None = None,
                            duration_seconds: int | None = None, use_cache: bool = True) -> Credentials:
        """STS credentials for the operator principal (ZEROTRUST_PRINCIPAL, the Kerberos
        ticket, or the OS user), served from the encrypted cache while valid.
        The result is a context manager that wipes the secret parts on exit.
        Governed like ``credentials get`` (the same function): the role and
        account allow-lists (``aws.roles``, ``aws.allowed_accounts``) and the
        role's IAM trust policy; ``access.policies`` name secrets and do not
        apply to credential issue (docs/security-model.md)."""
        from zerotrust_admin.aws.service import get_credentials

        return get_credentials(self._runtime, role_arn, external_id=external_id, via=via or (), duration=duration_seconds,
                               use_cache=use_cache)

    def get_secret(self, name: str, *, otp: str | None = None, otp_source: OtpSource | None = None) -> Secret:
        """A secret from the configured provider (audited), as a wipeable ``Secret``.

        Checked like ``vault get``: ``read`` under ``access.policies`` for this
        principal, then, for a sensitive secret (or one matching
        ``security.mfa.required_for``), a TOTP code from ``otp``, ``otp_source()``
        or ``$ZEROTRUST_OTP``, one code per call. A refusal, or a missing or
        wrong code, raises ``DeniedError`` (exit_code 4) and is audited;
        nothing ever prompts."""
        from zerotrust_admin.providers import open_provider

        codes = _codes(otp, otp_source, self._environ)
        provider = open_provider(self.config.provider, self.config, audit=self._runtime.audit, actor=self._runtime.actor,
                                 open_local_vault=self._runtime.vault, environ=self.config.environ)
        provider.guard = _guard(self.config, self._runtime, codes)
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

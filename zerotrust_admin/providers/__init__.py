"""Secret providers behind one interface (``base.SecretProvider``).

Adding a provider is one module plus one line in ``_REGISTRY``. Modules are
imported on first use, and each imports its SDK (hvac, boto3, azure) inside
the functions that call it, so the CLI starts fast whatever is configured.
"""

from __future__ import annotations

import importlib

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.providers.base import ProviderContext, SecretProvider, VersionConflict

_REGISTRY = {
    "local": "zerotrust_admin.providers.local:LocalProvider",
    "hashicorp": "zerotrust_admin.providers.hashicorp:HashicorpProvider",
    "aws": "zerotrust_admin.providers.aws:AwsProvider",
    "azure": "zerotrust_admin.providers.azure:AzureProvider",
}

ALIASES = {"hashicorp-vault": "hashicorp", "vault": "hashicorp", "openbao": "hashicorp", "aws-secrets-manager": "aws",
           "secretsmanager": "aws", "azure-key-vault": "azure", "keyvault": "azure", "integrated": "local"}


def names() -> list[str]:
    return list(_REGISTRY)


def canonical(kind: str) -> str:
    lowered = str(kind or "local").strip().lower()
    lowered = ALIASES.get(lowered, lowered)
    if lowered not in _REGISTRY:
        raise ConfigError(f"unknown secret provider {kind!r}", hint=f"one of: {', '.join(_REGISTRY)}")
    return lowered


def provider_class(kind: str):
    module, _, cls = _REGISTRY[canonical(kind)].partition(":")
    return getattr(importlib.import_module(module), cls)


def settings_for(config, kind: str) -> dict:
    """The config block of provider ``kind``: ``secrets.config`` when it is the
    configured provider, else ``secrets.targets.<kind>`` (for ``vault migrate``)."""
    kind = canonical(kind)
    if canonical(config.provider) == kind:
        block = config.get("secrets.config") or {}
    else:
        block = (config.get("secrets.targets") or {}).get(kind)
        if block is None:
            for alias, target in ALIASES.items():
                if target == kind and alias in (config.get("secrets.targets") or {}):
                    block = config.get("secrets.targets")[alias]
        if block is None:
            if kind == "local":
                return {}
            raise ConfigError(f"no configuration for the {kind} provider",
                              hint=f"add secrets.targets.{kind} (same keys as secrets.config) to the config file")
    if not isinstance(block, dict):
        raise ConfigError(f"the {kind} provider settings must be a mapping")
    return block


def open_provider(kind: str, config, *, audit=None, actor=None, open_local_vault=None, environ=None, audited: bool = True):
    """The provider ``kind`` built from ``config``, wrapped so that every operation is audited."""
    import os

    from zerotrust_admin.providers.audited import AuditedProvider

    kind = canonical(kind)
    ctx = ProviderContext(kind=kind, settings=settings_for(config, kind), config=config,
                          environ=dict(os.environ if environ is None else environ), open_local_vault=open_local_vault,
                          actor_name=getattr(actor, "user", "") or "")
    inner = provider_class(kind)(ctx)
    return AuditedProvider(inner, audit, actor) if audited else inner


__all__ = ["ProviderContext", "SecretProvider", "VersionConflict", "canonical", "names", "open_provider", "provider_class", "settings_for"]


def check_connection(provider) -> dict:
    """``config check --connect``: authenticate, probe permissions, time a round trip.

    Raises UnavailableError (exit 6) / DeniedError (exit 4) when the provider
    cannot be reached or refuses the credentials; permission gaps found after
    a successful login are returned in ``problems``.
    """
    import time

    from zerotrust_admin.errors import ZeroTrustError

    start = time.perf_counter()
    report = dict(provider.check())
    connect_ms = (time.perf_counter() - start) * 1000.0
    start = time.perf_counter()
    try:
        provider.inner.info("zerotrust-admin-connect-check") if hasattr(provider, "inner") else provider.info("zerotrust-admin-connect-check")
    except ZeroTrustError as exc:
        if exc.exit_code == 4:
            report.setdefault("problems", []).append("reading secret metadata is denied")
        elif exc.exit_code not in (3,):
            raise
    round_trip_ms = (time.perf_counter() - start) * 1000.0
    report.update(provider=provider.kind, connect_ms=round(connect_ms, 1), latency_ms=round(round_trip_ms, 1))
    report.setdefault("problems", [])
    return report

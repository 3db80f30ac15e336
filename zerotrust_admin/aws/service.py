"""``get_credentials``: cache lookup -> STS -> cache store, each outcome audited.

``rt`` is anything with ``config``, ``actor``, ``audit``, ``vault()`` and
``session_store()`` (the CLI's AppContext or ``aws.runtime.Runtime``).
Every issue and every cache hit writes a ``credential_issue`` audit record
(never the secret parts); so does every failure and every rejected cache entry.
"""

from __future__ import annotations

import time
from typing import Callable

from zerotrust_admin.aws.cache import CredentialCache, VaultKeyProvider
from zerotrust_admin.aws.credentials import Credentials
from zerotrust_admin.aws.settings import AwsSettings
from zerotrust_admin.aws.sts import AssumeRequest, assume, build_request
from zerotrust_admin.errors import DeniedError, NotFoundError, UnavailableError, UsageError, ZeroTrustError

EVENT = "credential_issue"


class _LazyVaultKeys(VaultKeyProvider):
    """Opens the vault only when a key is needed (a cache miss never opens it)."""

    def __init__(self, open_vault: Callable[[], object]):
        super().__init__(None)
        self._open = open_vault

    def __call__(self, version):
        if self.vault is None:
            try:
                self.vault = self._open()
            except (UsageError, DeniedError) as exc:
                # e.g. a passphrase vault without a terminal (credential_process): the
                # cache is an optimisation, so issue uncached rather than fail.
                raise UnavailableError(f"the vault holding the cache key cannot be opened here: {exc.message}") from None
        return super().__call__(version)


def open_cache(rt, settings: AwsSettings, *, clock=time.time, resource: str = "", warn: Callable[[str], None] | None = None) -> CredentialCache | None:
    """The credentials cache, or None (with a warning) when there is no vault or the store is down."""
    if not settings.cache_enabled:
        return None
    if not rt.config.vault_path.exists():
        if warn:
            warn("credentials are not cached: there is no vault for the cache key (run: zerotrust-admin init)")
        return None
    try:
        store = rt.session_store()
    except UnavailableError as exc:
        if warn:
            warn(f"credentials are not cached: {exc.message}")
        return None

    def on_reject(entry: str, reason: str) -> None:
        rt.audit.append(event=EVENT, action="cache_reject", resource=resource, success=False, actor=rt.actor,
                        level="warning", entry=entry, problem=reason, store=store.describe())

    return CredentialCache(store, _LazyVaultKeys(rt.vault), margin=settings.safety_margin, clock=clock, on_reject=on_reject)


def _details(request: AssumeRequest, creds: Credentials, source: str, cached: bool) -> dict:
    return {"source": source, "session_name": request.session_name, "via": request.via, "duration_seconds": request.duration,
            "expiration": creds.expiration_text, "access_key_id": creds.access_key_id, "cached": cached,
            "external_id_set": bool(request.hops[-1].external_id)}


def get_credentials(rt, role_arn: str, *, external_id: str | None = None, via=(), duration: int | None = None,
                    use_cache: bool = True, clock: Callable[[], float] = time.time,
                    warn: Callable[[str], None] | None = None, session_factory=None) -> Credentials:
    actor = rt.actor
    resource = str(role_arn)
    try:
        settings = AwsSettings.from_config(rt.config)
        request = build_request(settings, actor.user, role_arn, external_id=external_id, via=list(via), duration=duration)
        resource = request.role.arn
    except ZeroTrustError as exc:
        rt.audit.append(event=EVENT, action="issue", resource=resource, success=False, actor=actor, error=exc.message)
        raise
    cache = open_cache(rt, settings, clock=clock, resource=resource, warn=warn) if use_cache else None
    request_id = request.identity()
    if cache is not None:
        try:
            hit = cache.get(actor.user, request_id)
        except (UnavailableError, NotFoundError) as exc:
            if warn:
                warn(f"credentials cache unavailable: {exc.message}")
            cache, hit = None, None
        if hit is not None:
            rt.audit.append(event=EVENT, action="issue", resource=resource, success=True, actor=actor, **_details(request, hit, "cache", True))
            return hit
    try:
        creds = assume(request, settings, rt.config, session_factory=session_factory)
    except ZeroTrustError as exc:
        rt.audit.append(event=EVENT, action="issue", resource=resource, success=False, actor=actor, error=exc.message,
                        session_name=request.session_name, via=request.via)
        raise
    stored = False
    if cache is not None:
        try:
            stored = cache.put(actor.user, request_id, creds)
        except (UnavailableError, NotFoundError) as exc:
            if warn:
                warn(f"credentials not cached: {exc.message}")
    rt.audit.append(event=EVENT, action="issue", resource=resource, success=True, actor=actor, **_details(request, creds, "sts", stored))
    return creds

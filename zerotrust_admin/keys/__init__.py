"""Master key sources behind one interface (SOPS-style: a master key only wraps
and unwraps data keys; it never sees a secret).

Adding a source is one module plus one line in ``_REGISTRY``. A source class
with an endpoint provides ``configured_location(ctx) -> dict | None`` (what the
configuration says, None when it is not enabled) and records exactly that dict
at ``create``: a vault opens only when the two agree (keys/configured.py,
threat-model V1). A registered kind without it is refused on open.
"""

from __future__ import annotations

from zerotrust_admin.keys.base import KeySource, KeySourceContext, UnwrapFailed
from zerotrust_admin.keys import envkey, keyfile, passphrase, pkcs11, transit

_REGISTRY = {
    keyfile.KeyFileSource.kind: keyfile.KeyFileSource,
    envkey.EnvKeySource.kind: envkey.EnvKeySource,
    passphrase.PassphraseSource.kind: passphrase.PassphraseSource,
    pkcs11.Pkcs11KeySource.kind: pkcs11.Pkcs11KeySource,  # encryption.hsm: pkcs11 and aws-cloudhsm
    transit.TransitKeySource.kind: transit.TransitKeySource,  # encryption.transit: HashiCorp Vault transit
}


def register(source_cls) -> None:
    _REGISTRY[source_cls.kind] = source_cls


def source_class(kind: str):
    try:
        return _REGISTRY[kind]
    except KeyError:
        from zerotrust_admin.errors import ConfigError

        raise ConfigError(f"unknown master key source {kind!r}", hint=f"one of: {', '.join(sorted(_REGISTRY))}") from None


def choose_new_source(ctx: KeySourceContext, *, want_passphrase: bool = False) -> str:
    """Which source ``init`` uses: --passphrase, else the env key, else a key file."""
    if want_passphrase:
        return passphrase.PassphraseSource.kind
    hsm = ctx.config.get("encryption", {}).get("hsm") or {}
    if hsm.get("enabled") and "pkcs11" in _REGISTRY:
        return "pkcs11"
    if transit.transit_configured(ctx.config):
        return transit.TransitKeySource.kind
    if ctx.config.get("encryption", {}).get("key"):
        return envkey.EnvKeySource.kind
    return keyfile.KeyFileSource.kind


def open_configured_source(ctx: KeySourceContext, recorded_kind: str, recorded_params: dict) -> KeySource:
    """The master key for a vault, from the configuration; the vault's records
    only have to agree with it (keys/configured.py, threat-model V1 and V7)."""
    from zerotrust_admin.keys.configured import open_configured_source as _open

    return _open(ctx, recorded_kind, recorded_params)


def open_source(kind: str, ctx: KeySourceContext, params: dict) -> KeySource:
    """The older call shape of ``open_configured_source`` (same checks)."""
    return open_configured_source(ctx, kind, params)


__all__ = ["KeySource", "KeySourceContext", "UnwrapFailed", "choose_new_source", "open_configured_source", "open_source", "register", "source_class"]

"""Master key sources behind one interface (SOPS-style: a master key only wraps
and unwraps data keys; it never sees a secret).

Adding a source is one module plus one line in ``_REGISTRY``.
"""

from __future__ import annotations

from zerotrust_admin.keys.base import KeySource, KeySourceContext, UnwrapFailed
from zerotrust_admin.keys import envkey, keyfile, passphrase

_REGISTRY = {
    keyfile.KeyFileSource.kind: keyfile.KeyFileSource,
    envkey.EnvKeySource.kind: envkey.EnvKeySource,
    passphrase.PassphraseSource.kind: passphrase.PassphraseSource,
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
    if ctx.config.get("encryption", {}).get("key"):
        return envkey.EnvKeySource.kind
    return keyfile.KeyFileSource.kind


def open_source(kind: str, ctx: KeySourceContext, params: dict) -> KeySource:
    """Open the source a vault records; raw-key sources are interchangeable.

    A vault created with a key file can be opened with the same key given in
    ZEROTRUST_ENCRYPTION_KEY and vice versa: the key check value decides.
    """
    if kind in (keyfile.KeyFileSource.kind, envkey.EnvKeySource.kind):
        if ctx.config.get("encryption", {}).get("key"):
            return envkey.EnvKeySource.open(ctx, params)
        return keyfile.KeyFileSource.open(ctx, params)
    return source_class(kind).open(ctx, params)


__all__ = ["KeySource", "KeySourceContext", "UnwrapFailed", "choose_new_source", "open_source", "register", "source_class"]

"""Master key sources behind one interface (SOPS-style: a master key only wraps
and unwraps data keys; it never sees a secret).

Adding a source is one module plus one line in ``_REGISTRY``.
"""

from __future__ import annotations

import os

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


def open_source(kind: str, ctx: KeySourceContext, params: dict) -> KeySource:
    """Open the source a vault records; raw-key sources are interchangeable.

    A vault created with a key file can be opened with the same key given in
    ZEROTRUST_ENCRYPTION_KEY and vice versa: the key check value decides.
    """
    if kind in (keyfile.KeyFileSource.kind, envkey.EnvKeySource.kind):
        if ctx.config.get("encryption", {}).get("key"):
            return envkey.EnvKeySource.open(ctx, params)
        primary = keyfile.KeyFileSource.open(ctx, params)
        previous = keyfile.key_file_path(ctx).with_name(keyfile.key_file_path(ctx).name + ".previous")
        if os.path.lexists(previous):
            # A master key rotation was interrupted before or just after its
            # commit: the vault opens with whichever key its check value accepts.
            from zerotrust_admin.fsutil import read_private_file
            from zerotrust_admin.keys.fallback import FirstMatchKeySource
            from zerotrust_admin.keys.raw import decode_key_text

            text = read_private_file(previous, what="previous master key file")
            older = keyfile.KeyFileSource(decode_key_text(text, f"master key file {previous}"), params.get("key_id", ""), str(previous))
            return FirstMatchKeySource([primary, older])
        return primary
    return source_class(kind).open(ctx, params)


__all__ = ["KeySource", "KeySourceContext", "UnwrapFailed", "choose_new_source", "open_source", "register", "source_class"]

"""Master key derived from a passphrase with scrypt; the parameters live in the vault.

The passphrase comes from a hidden prompt on a terminal, otherwise from
ZEROTRUST_PASSPHRASE (documented for cron and scripts), never from argv.
"""

from __future__ import annotations

from zerotrust_admin.crypto import ScryptParams, derive_key
from zerotrust_admin.crypto.kdf import WorkFactorOutOfBounds, scrypt_params_from_untrusted
from zerotrust_admin.errors import IntegrityError, UsageError
from zerotrust_admin.keys.base import KeySourceContext, UnwrapFailed
from zerotrust_admin.keys.raw import RawKeySource
from zerotrust_admin.secret import Secret

PASSPHRASE_ENV = "ZEROTRUST_PASSPHRASE"
MIN_LENGTH = 12


def _get_passphrase(ctx: KeySourceContext, confirm: bool) -> Secret:
    from_env = ctx.environ.get(PASSPHRASE_ENV)
    if from_env:
        return Secret(from_env)
    if ctx.ask_passphrase is None:
        raise UsageError(
            "this vault is protected by a passphrase and no terminal is available to ask for it",
            hint=f"set {PASSPHRASE_ENV} for non-interactive use",
        )
    return ctx.ask_passphrase("Vault passphrase", confirm)


class PassphraseSource(RawKeySource):
    kind = "passphrase"

    @classmethod
    def create(cls, ctx: KeySourceContext, key_id: str, *, scrypt_n: int | None = None) -> tuple["PassphraseSource", dict]:
        passphrase = _get_passphrase(ctx, confirm=True)
        if len(passphrase) < MIN_LENGTH:
            raise UsageError(f"the passphrase is shorter than {MIN_LENGTH} characters", hint="use a longer passphrase (a few random words)")
        params = ScryptParams.new() if scrypt_n is None else ScryptParams.new(n=scrypt_n)
        with passphrase:
            key = derive_key(passphrase.reveal(), params)
        return cls(Secret(key), key_id, "passphrase"), {"kdf": params.to_dict()}

    @classmethod
    def open(cls, ctx: KeySourceContext, params: dict) -> "PassphraseSource":
        try:
            # The vault file chooses the salt and work factors: bounded before
            # any prompt or derivation (threat-model V7; an N of 2^22 would cost
            # 4 GiB and half a minute).
            kdf = scrypt_params_from_untrusted(params.get("kdf"))
        except WorkFactorOutOfBounds as exc:
            raise IntegrityError(f"the vault's passphrase parameters are refused: {exc}; the vault file was edited",
                                 hint="restore the vault from a backup") from None
        guard = _lockout_guard(ctx)
        guard.check()  # locked out: refuse before asking or deriving anything
        passphrase = _get_passphrase(ctx, confirm=False)
        with passphrase:
            key = derive_key(passphrase.reveal(), kdf)
        source = cls(Secret(key), params.get("key_id", ""), "passphrase")
        source._guard = guard
        return source

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        # The first unwrap after open() is the vault's key check value: its
        # outcome is the passphrase's verdict, counted by the lockout.
        guard, self._guard = getattr(self, "_guard", None), None
        try:
            plaintext = super().unwrap(blob, aad)
        except UnwrapFailed:
            if guard is not None:
                guard.failed()
            raise
        if guard is not None:
            guard.succeeded()
        return plaintext


def _lockout_guard(ctx: KeySourceContext):
    from zerotrust_admin.lockout import AttemptGuard

    return AttemptGuard.for_key_context(ctx, "passphrase")

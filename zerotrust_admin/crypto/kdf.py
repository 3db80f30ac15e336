"""Passphrase -> key derivation (scrypt, parameters stored beside the vault)."""

from __future__ import annotations

import os
import re

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from zerotrust_admin.structs import asdict, struct


@struct(frozen=True)
class ScryptParams:
    salt_hex: str
    n: int = 2**17  # OWASP's scrypt recommendation: N=2^17, r=8, p=1 (128 MiB)
    r: int = 8
    p: int = 1
    algorithm: str = "scrypt"

    @classmethod
    def new(cls, n: int = 2**17) -> "ScryptParams":
        return cls(salt_hex=os.urandom(16).hex(), n=n)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ScryptParams":
        if data.get("algorithm") != "scrypt":
            raise ValueError(f"unsupported KDF {data.get('algorithm')!r}")
        return cls(salt_hex=str(data["salt_hex"]), n=int(data["n"]), r=int(data["r"]), p=int(data["p"]))


# Work-factor bounds, checked before any derivation when the parameters come
# from a file (a vault's master_params, a backup header): the file must not
# choose how much time and memory we spend (age's rule). 2^17 is the default;
# 2^20 costs 1 GiB and about 1 s here, the most we accept. The floor only
# rejects nonsense: a lower N chosen by someone without the passphrase does not
# help them (the key check value was made under the real one); 2^10 is what the
# known-answer vectors use.
SCRYPT_MIN_LOG2_N = 10
SCRYPT_MAX_LOG2_N = 20
SALT_MIN_BYTES = 16
SALT_MAX_BYTES = 64


class WorkFactorOutOfBounds(ValueError):
    """Untrusted KDF parameters outside the accepted bounds."""


def scrypt_params_from_untrusted(data) -> ScryptParams:
    """ScryptParams from a decoded header, bounds checked before anything is
    derived: N a power of two in [2^10, 2^20], r = 8, p = 1, a 16-64 byte salt.
    Raises WorkFactorOutOfBounds for anything else (callers map it to an
    integrity failure, exit 5)."""
    if not isinstance(data, dict) or data.get("algorithm", "scrypt") != "scrypt":
        raise WorkFactorOutOfBounds("unsupported key derivation")
    n, r, p, salt = data.get("n"), data.get("r"), data.get("p"), data.get("salt_hex")
    if not all(type(v) is int for v in (n, r, p)):
        raise WorkFactorOutOfBounds("scrypt parameters must be integers")
    if n < 2 or n & (n - 1) or not (SCRYPT_MIN_LOG2_N <= n.bit_length() - 1 <= SCRYPT_MAX_LOG2_N):
        raise WorkFactorOutOfBounds(f"scrypt N={n} is outside 2^{SCRYPT_MIN_LOG2_N}..2^{SCRYPT_MAX_LOG2_N}")
    if r != 8 or p != 1:
        raise WorkFactorOutOfBounds(f"scrypt r={r}, p={p}: only r=8, p=1 are accepted")
    if not isinstance(salt, str) or not re.fullmatch(r"(?:[0-9a-f]{2}){%d,%d}" % (SALT_MIN_BYTES, SALT_MAX_BYTES), salt):
        raise WorkFactorOutOfBounds("the scrypt salt is malformed")
    return ScryptParams(salt_hex=salt, n=n, r=r, p=p)


def derive_key(passphrase: bytes, params: ScryptParams) -> bytes:
    kdf = Scrypt(salt=bytes.fromhex(params.salt_hex), length=32, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase)

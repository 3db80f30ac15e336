"""Passphrase -> key derivation (scrypt, parameters stored beside the vault)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt


@dataclass(frozen=True)
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


def derive_key(passphrase: bytes, params: ScryptParams) -> bytes:
    kdf = Scrypt(salt=bytes.fromhex(params.salt_hex), length=32, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase)

"""RFC 6238 TOTP for MFA: time steps, the skew window, seeds and otpauth URIs.

The codes themselves come from ``cryptography``'s maintained HOTP (wrapped in
``zerotrust_admin.crypto.totp``, the only package that touches hazmat).
Pinned by the RFC 6238 appendix B test vectors in tests/test_mfa.py.
"""

from __future__ import annotations

import base64
import os
from urllib.parse import quote, urlencode

ALGORITHMS = ("SHA1", "SHA256", "SHA512")
DEFAULT_PERIOD = 30
DEFAULT_DIGITS = 6
SEED_BYTES = 20  # RFC 4226 recommends 160 bits, the size of an HMAC-SHA1 key


def hotp(key: bytes, counter: int, *, digits: int = DEFAULT_DIGITS, algorithm: str = "SHA1") -> str:
    from zerotrust_admin.crypto import totp as codes

    return codes.hotp(key, counter, digits=digits, algorithm=algorithm)


def time_step(unix_time: float, *, period: int = DEFAULT_PERIOD, t0: int = 0) -> int:
    return int((unix_time - t0) // period)


def totp(key: bytes, unix_time: float, *, period: int = DEFAULT_PERIOD, digits: int = DEFAULT_DIGITS, algorithm: str = "SHA1") -> str:
    from zerotrust_admin.crypto import totp as codes

    return codes.totp(key, unix_time, period=period, digits=digits, algorithm=algorithm)


def matching_step(key: bytes, code: str, unix_time: float, *, skew_steps: int = 1, period: int = DEFAULT_PERIOD,
                  digits: int = DEFAULT_DIGITS, algorithm: str = "SHA1") -> int | None:
    """The time step (within +/- ``skew_steps``) whose code equals ``code``, else None.

    Every candidate is compared in constant time, and all of them are computed
    whatever matches, so timing says nothing about which step matched.
    """
    if not isinstance(code, str) or len(code) != digits or not code.isdigit():
        return None
    from zerotrust_admin.crypto import totp as codes

    now_step = time_step(unix_time, period=period)
    found = None
    for step in range(now_step - skew_steps, now_step + skew_steps + 1):
        if step < 0:
            continue
        if codes.hotp_matches(key, code, step, digits=digits, algorithm=algorithm) and found is None:
            found = step
    return found


def new_seed() -> bytes:
    return os.urandom(SEED_BYTES)


def b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode("ascii").rstrip("=")


def otpauth_uri(seed: bytes, account: str, issuer: str, *, period: int = DEFAULT_PERIOD, digits: int = DEFAULT_DIGITS, algorithm: str = "SHA1") -> str:
    """Key URI format understood by authenticator apps (Google Authenticator's spec)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode({"secret": b32(seed), "issuer": issuer, "algorithm": algorithm.upper(), "digits": digits, "period": period})
    return f"otpauth://totp/{label}?{query}"

"""RFC 4226 HOTP and RFC 6238 TOTP from ``cryptography`` (hazmat twofactor).

The one place the tool computes one-time codes; ``zerotrust_admin.mfa.totp``
keeps the MFA-facing helpers (time steps, skew window, otpauth URIs) on top of
it. Pinned by the RFC 6238 appendix B and RFC 4226 appendix D vectors
(tests/test_mfa.py, tests/test_operator_totp.py). Imported lazily: the MFA
path only, never the start of ``vault get``.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.hashes import SHA1, SHA256, SHA512
from cryptography.hazmat.primitives.twofactor.hotp import HOTP

ALGORITHMS = {"SHA1": SHA1, "SHA256": SHA256, "SHA512": SHA512}


def _hotp(key: bytes, digits: int, algorithm: str) -> HOTP:
    try:
        hash_cls = ALGORITHMS[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unsupported TOTP algorithm {algorithm!r} (SHA1, SHA256 or SHA512)") from None
    # enforce_key_length: cryptography refuses keys under 128 bits (RFC 4226 section 4, R6)
    return HOTP(key, digits, hash_cls(), enforce_key_length=True)


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The ``digits``-digit HOTP code of ``counter``."""
    return _hotp(key, digits, algorithm).generate(counter).decode("ascii")


def hotp_matches(key: bytes, code: str, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> bool:
    """Whether ``code`` is the HOTP code of ``counter``, compared in constant time."""
    try:
        _hotp(key, digits, algorithm).verify(code.encode("ascii"), counter)
    except InvalidToken:
        return False
    return True


def totp(key: bytes, unix_time: float, *, period: int = 30, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The RFC 6238 code at ``unix_time`` (T0 = 0), from cryptography's TOTP."""
    from cryptography.hazmat.primitives.twofactor.totp import TOTP

    hotp_ = _hotp(key, digits, algorithm)  # validates the algorithm and key length with the same messages
    del hotp_
    return TOTP(key, digits, ALGORITHMS[algorithm.upper()](), period, enforce_key_length=True).generate(unix_time).decode("ascii")

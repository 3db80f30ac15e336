"""Issue 14 polish: TOTP codes come from cryptography's maintained HOTP/TOTP,
wrapped in zerotrust_admin/crypto/totp.py (the only package that touches
hazmat); the RFC 6238 appendix B and RFC 4226 appendix D vectors hold for the
wrapper and for the MFA helpers on top of it."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT
from tests.test_mfa import RFC4226_HOTP, RFC6238_SEEDS, RFC6238_VECTORS


@pytest.mark.parametrize("t,sha1,sha256,sha512", RFC6238_VECTORS)
def test_the_crypto_wrapper_gives_the_rfc6238_vectors(t, sha1, sha256, sha512):
    from zerotrust_admin.crypto import totp as codes

    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        assert codes.totp(RFC6238_SEEDS[algorithm], t, digits=8, algorithm=algorithm) == expected
        assert codes.hotp_matches(RFC6238_SEEDS[algorithm], expected, t // 30, digits=8, algorithm=algorithm)
        assert not codes.hotp_matches(RFC6238_SEEDS[algorithm], expected, t // 30 + 1, digits=8, algorithm=algorithm)


def test_the_crypto_wrapper_gives_the_rfc4226_vectors_and_refuses_short_keys():
    from zerotrust_admin.crypto import totp as codes

    assert [codes.hotp(RFC6238_SEEDS["SHA1"], i) for i in range(10)] == RFC4226_HOTP
    with pytest.raises(ValueError):
        codes.hotp(b"too-short", 0)  # under 128 bits (RFC 4226 R6), refused by cryptography
    with pytest.raises(ValueError, match="unsupported TOTP algorithm"):
        codes.hotp(RFC6238_SEEDS["SHA1"], 0, algorithm="MD5")


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_mfa_totp_has_no_hand_written_hotp():
    imports = _imports(ROOT / "zerotrust_admin" / "mfa" / "totp.py")
    assert not imports & {"hmac", "hashlib", "struct"}, imports  # the RFC 4226 truncation is cryptography's
    assert "zerotrust_admin.crypto" in imports
    assert any(m.startswith("cryptography.hazmat.primitives.twofactor") for m in _imports(ROOT / "zerotrust_admin" / "crypto" / "totp.py"))

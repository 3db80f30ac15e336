"""``secrets status`` lists every certificate in the vault, managed or not
(issue 15): PEM, DER and key+certificate bundles found by content, expired and
expiring flagged, access policies (names the principal may not read are
reported, not read), sensitive secrets skipped without an MFA code and read
with one, one audit record for the scan, no value in the output, and the
prefilter that keeps the X.509 parser away from ordinary values."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.test_backup import Mfa


def make_cert(cn: str, not_before: datetime, not_after: datetime):
    """(certificate PEM, certificate DER, key PEM) of a self-signed certificate with this validity."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(cx509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER), key_pem


def write_config(tmp_path: Path, **data) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def audit_records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines() if line.strip()]


def put(cli, name: str, value: bytes, env: dict, *extra: str) -> None:
    result = cli("vault", "put", *extra, name, input=value, env=env)
    assert result.code == 0, result.err


def status(cli, env: dict) -> dict:
    result = cli("secrets", "status", "--json", env=env)
    assert result.code == 0, result.err
    return json.loads(result.out)


NOW = datetime.now(timezone.utc)


def test_every_certificate_in_the_vault_with_its_expiry(cli, initialized, tmp_path):
    env = write_config(tmp_path)
    good_pem, _, good_key = make_cert("good.example.com", NOW - timedelta(days=10), NOW + timedelta(days=200))
    _, soon_der, _ = make_cert("soon.example.com", NOW - timedelta(days=80), NOW + timedelta(days=10))
    old_pem, _, _ = make_cert("old.example.com", NOW - timedelta(days=400), NOW - timedelta(days=3))
    put(cli, "web/bundle", good_key + good_pem, env)            # key first, then the certificate
    put(cli, "web/soon.der", soon_der, env)                     # DER
    put(cli, "legacy/old", b"\n" + old_pem, env)                # leading whitespace
    put(cli, "db/password", b"-----BEGIN not a certificate at all", env)
    put(cli, "api/zero", b"0123456789abcdef", env)              # starts with 0x30 ('0'): not DER
    put(cli, "junk/der", b"\x30\x82\x01\x00" + b"\x00" * 256, env)  # a DER-looking SEQUENCE that is no certificate
    out = status(cli, env)
    certs = {c["secret"]: c for c in out["certificates"]}
    assert set(certs) == {"web/bundle", "web/soon.der", "legacy/old"}
    b = certs["web/bundle"]
    assert b["subject"] == "CN=good.example.com" and b["format"] == "pem" and b["private_key_in_value"] is True
    assert 198 <= b["days_left"] <= 200 and not b["expired"] and not b["expiring"] and b["managed"] is False and b["kind"] is None
    s = certs["web/soon.der"]
    assert s["format"] == "der" and 9 <= s["days_left"] <= 10 and s["expiring"] is True and s["expired"] is False
    o = certs["legacy/old"]
    assert o["expired"] is True and o["days_left"] <= -3 and not o["expiring"]
    assert out["certificates_expired"] == 1 and out["certificates_expiring"] == 1
    assert out["certificate_scan"]["inspected"] == 6 and out["certificate_scan"]["not_readable"] == []
    # No value in the output: not the key, not the certificate.
    text = cli("secrets", "status", env=env)
    assert text.code == 0, text.err
    for line in (good_key + good_pem).decode().splitlines()[1:-1]:
        assert line not in text.text + text.err
    assert "web/soon.der" in text.text and "EXPIRING" in text.text and "EXPIRED" in text.text
    # One audit record per scan, with its counts (not one per secret read).
    scans = [r for r in audit_records(initialized) if r["event"] == "secret_access" and (r.get("details") or {}).get("operation") == "certificate_inventory"]
    assert len(scans) == 2 and scans[0]["action"] == "read" and scans[0]["resource"] == "*" and scans[0]["success"] is True
    assert scans[0]["details"]["inspected"] == 6 and scans[0]["details"]["certificates"] == 3
    assert not any(r["event"] == "secret_access" and r["action"] == "read" and r["resource"] == "web/bundle" for r in audit_records(initialized))
    # --no-certificates reads no value.
    before = len(audit_records(initialized))
    plain = cli("secrets", "status", "--no-certificates", "--json", env=env)
    assert plain.code == 0 and "certificates" not in json.loads(plain.out)
    assert not any((r.get("details") or {}).get("operation") == "certificate_inventory" for r in audit_records(initialized)[before:])


def test_managed_certificate_uses_its_rotation_window(cli, initialized, tmp_path):
    """A managed tls certificate is 'expiring' once past its renewal time (two
    thirds of its lifetime), although far more than 30 days are left."""
    ca = {"secret": "pki/ca", "kind": "random", "every": "30d", "grace": "1h", "target": {"length": 16}}
    entry = {"secret": "web/tls", "kind": "tls", "grace": "1h",
             "target": {"ca_secret": "pki/ca-bundle", "common_name": "web.example.com", "lifetime": "300d"}}
    env = write_config(tmp_path, secret_rotation=[ca, entry])
    pem, _, key = make_cert("web.example.com", NOW - timedelta(days=250), NOW + timedelta(days=50))
    put(cli, "web/tls", key + pem, env)
    fresh, _, _ = make_cert("other.example.com", NOW - timedelta(days=250), NOW + timedelta(days=50))
    put(cli, "web/unmanaged", fresh, env)
    certs = {c["secret"]: c for c in status(cli, env)["certificates"]}
    assert certs["web/tls"]["managed"] is True and certs["web/tls"]["kind"] == "tls"
    assert certs["web/tls"]["expiring"] is True and certs["web/tls"]["renew_at"] is not None
    assert certs["web/unmanaged"]["managed"] is False and certs["web/unmanaged"]["expiring"] is False
    assert "pki/ca" not in certs  # a random value, not a certificate


def test_policies_and_mfa(cli, initialized, tmp_path):
    policies = {"access": {"policies": [
        {"principals": ["alice@EXAMPLE.COM"], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"},
        {"principals": ["bob@EXAMPLE.COM"], "secrets": ["web/*"], "actions": ["read", "list"], "effect": "allow"},
        {"principals": ["bob@EXAMPLE.COM"], "secrets": ["ops/*"], "actions": ["list"], "effect": "allow"}]}}
    env = write_config(tmp_path, **policies)
    alice = {**env, "ZEROTRUST_PRINCIPAL": "alice@EXAMPLE.COM"}
    bob = {**env, "ZEROTRUST_PRINCIPAL": "bob@EXAMPLE.COM"}
    a, _, _ = make_cert("a.example.com", NOW - timedelta(days=1), NOW + timedelta(days=90))
    put(cli, "web/a", a, alice)
    put(cli, "ops/b", a, alice)
    put(cli, "hidden/c", a, alice)
    put(cli, "web/sensitive", a, alice, "--sensitive")
    seen = status(cli, bob)
    assert {c["secret"] for c in seen["certificates"]} == {"web/a"}
    assert seen["certificate_scan"]["not_readable"] == ["ops/b"], "listable but not readable: named, not read"
    assert seen["certificate_scan"]["needs_mfa"] == ["web/sensitive"]
    text = cli("secrets", "status", env=bob)
    assert text.code == 0 and "hidden/c" not in text.text + text.err, "a name bob may not list is not even named"
    assert "ops/b" in text.err and "ZEROTRUST_OTP" in text.err
    # With a code the sensitive secret is read; with a wrong one: exit 4.
    mfa = Mfa(cli, alice)
    with_code = status(cli, {**alice, **mfa.code()})
    assert {c["secret"] for c in with_code["certificates"]} == {"web/a", "ops/b", "hidden/c", "web/sensitive"}
    assert with_code["certificate_scan"]["needs_mfa"] == []
    wrong = cli("secrets", "status", "--json", env={**alice, "ZEROTRUST_OTP": "000000"})
    assert wrong.code == 4, wrong.err


def test_prefilter_and_parser_on_hostile_values():
    from zerotrust_admin.crypto.x509 import certificate_in
    from zerotrust_admin.secret_rotation.certs import candidate

    pem, der, key = make_cert("x.example.com", NOW, NOW + timedelta(days=1))
    assert candidate(pem[:64], len(pem)) and candidate(der[:64], len(der)) and candidate(b"  \n" + pem[:61], len(pem) + 3)
    assert not candidate(b"0123456789", 10) and not candidate(b"\x30\x82\x01\x00", 20) and not candidate(b"hello", 5)
    assert not candidate(b"\x30\x05abcde", 7), "a short-form length: too small for a certificate"
    assert certificate_in(der)[1] == {"format": "der", "certificates": 1, "private_key": False}
    assert certificate_in(key + pem + pem)[1] == {"format": "pem", "certificates": 2, "private_key": True}
    unknown_version = der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x07", 1)  # the parser raises InvalidVersion, not ValueError
    assert unknown_version != der
    for bad in (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key, der[:-1], b"\x30\x82\xff\xff" + b"A" * 65535, pem[:-40],
                unknown_version):
        assert certificate_in(bad) is None


def test_scan_parses_only_candidates(cli, initialized, zt_env, monkeypatch):
    """2,000 ordinary values and 3 certificates: every value is read once, the
    X.509 parser sees the 3 certificates and the 2 look-alikes only."""
    import zerotrust_admin.crypto.x509 as zx509
    from tests.keyhelpers import open_vault
    from zerotrust_admin.secret_rotation.certs import certificate_inventory

    pem, der, key = make_cert("bulk.example.com", NOW, NOW + timedelta(days=5))
    vault, _config, _ = open_vault(zt_env, audited=False)
    try:
        vault.import_many([(f"app/k{i:04d}", os.urandom(16).hex().encode()) for i in range(2000)]
                          + [("c/pem", pem), ("c/der", der), ("c/bundle", key + pem), ("c/fake", b"-----BEGIN X-----\n"),
                             ("c/fakeder", b"\x30\x81\x03abc")])
        calls = []
        real = zx509.certificate_in
        monkeypatch.setattr(zx509, "certificate_in", lambda data: calls.append(len(data)) or real(data))
        out = certificate_inventory(vault, {}, may_list=lambda n: True, may_read=lambda n: True, needs_mfa=lambda n, s: False, mfa=lambda n: False)
    finally:
        vault.close()
    assert out["inspected"] == 2005
    assert sorted(c["secret"] for c in out["certificates"]) == ["c/bundle", "c/der", "c/pem"]
    assert all(c["expiring"] and not c["expired"] for c in out["certificates"])
    assert len(calls) == 5, "only PEM headers and DER-shaped values reach the parser"

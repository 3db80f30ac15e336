"""X.509 for the ``tls`` secret-rotation kind: keys, certificates issued by a CA
whose key is held in the vault, and the checks a renewal is tested with.

Import it as ``zerotrust_admin.crypto.x509`` (not re-exported: it costs ~20 ms
and only ``rotate-secrets`` needs it). Errors are ``X509Error`` with a short
reason; never a key in a message.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072")


class X509Error(Exception):
    """A PEM that does not parse, a certificate that does not verify."""


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    serial: int
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"subject": self.subject, "issuer": self.issuer, "serial": format(self.serial, "x"),
                "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(), "sans": list(self.sans)}


def generate_key(key_type: str = "ec-p256") -> bytes:
    if key_type == "ec-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "ec-p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type in ("rsa-2048", "rsa-3072"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    else:
        raise X509Error(f"unknown key type {key_type!r}")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _key(pem: bytes):
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise X509Error("not an unencrypted PEM private key") from None


def _cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise X509Error("not a PEM certificate") from None


def _san(names) -> x509.SubjectAlternativeName:
    out = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


def self_signed_ca(common_name: str, days: int = 3650, key_type: str = "ec-p256") -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a new CA."""
    key_pem = generate_key(key_type)
    key = _key(key_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def issue(ca_key_pem: bytes, ca_cert_pem: bytes, key_pem: bytes, common_name: str, sans: list[str], lifetime: timedelta) -> bytes:
    """A server certificate for ``key_pem``'s public key, signed by the CA."""
    ca_key, ca_cert, key = _key(ca_key_pem), _cert(ca_cert_pem), _key(key_pem)
    if ca_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            ca_cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise X509Error("the CA key does not belong to the CA certificate")
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + lifetime)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if sans:
        builder = builder.add_extension(_san(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def info(cert_pem: bytes) -> CertInfo:
    cert = _cert(cert_pem)
    try:
        sans = tuple(str(v) for v in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)) + \
            tuple(str(v) for v in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        sans = ()
    return CertInfo(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.serial_number,
                    cert.not_valid_before_utc, cert.not_valid_after_utc, sans)


def check_issued(cert_pem: bytes, key_pem: bytes, ca_cert_pem: bytes, at: datetime | None = None) -> CertInfo:
    """The certificate is signed by the CA, valid at ``at`` and belongs to the key; else X509Error."""
    cert, ca, key = _cert(cert_pem), _cert(ca_cert_pem), _key(key_pem)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, spki) != key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise X509Error("the certificate does not belong to the key")
    if cert.issuer != ca.subject:
        raise X509Error("the certificate was not issued by the CA")
    public = ca.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        else:
            raise X509Error("unsupported CA key type")
    except InvalidSignature:
        raise X509Error("the certificate's signature does not verify with the CA") from None
    at = at or datetime.now(timezone.utc)
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise X509Error("the certificate is not valid now")
    return info(cert_pem)


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n[A-Za-z0-9+/=\r\n]{1,65536}?-----END \1-----\r?\n?")


def split_pem(data: bytes) -> dict[str, list[bytes]]:
    """{"key": [...], "cert": [...]} blocks of a PEM bundle, in order."""
    out: dict[str, list[bytes]] = {"key": [], "cert": []}
    for match in _PEM.finditer(data):
        label = match.group(1)
        if label.endswith(b"PRIVATE KEY"):
            out["key"].append(match.group(0))
        elif label == b"CERTIFICATE":
            out["cert"].append(match.group(0))
    return out


def certificate_in(data: bytes) -> tuple[CertInfo, dict] | None:
    """The first certificate of a PEM value (a certificate, a chain, or a bundle
    holding a key and a certificate) or of a DER certificate, with what else the
    value holds: ``{"format": "pem"|"der", "certificates": n, "private_key": bool}``.
    None when the value holds no certificate that parses. Never raises on
    hostile input, and never puts any of ``data`` in a message."""
    if data[:1] == b"\x30":
        summary = _parsed(x509.load_der_x509_certificate, data)
        return (summary, {"format": "der", "certificates": 1, "private_key": False}) if summary else None
    parts = split_pem(data)
    for block in parts["cert"]:
        summary = _parsed(x509.load_pem_x509_certificate, block)
        if summary is not None:
            return summary, {"format": "pem", "certificates": len(parts["cert"]), "private_key": bool(parts["key"])}
    return None


def _parsed(load, data: bytes) -> CertInfo | None:
    try:
        return _summary(load(data))
    except Exception:  # noqa: BLE001 - hostile bytes: whatever the parser raises (ValueError, InvalidVersion, ...) means "no certificate"
        return None


def _summary(cert: x509.Certificate) -> CertInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(v) for v in san.get_values_for_type(x509.DNSName)) + tuple(str(v) for v in san.get_values_for_type(x509.IPAddress))
    except (x509.ExtensionNotFound, ValueError):  # absent, or a malformed extension: the rest still describes it
        sans = ()
    try:
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    except ValueError:
        subject = issuer = "(unparseable name)"
    return CertInfo(subject, issuer, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc, sans)

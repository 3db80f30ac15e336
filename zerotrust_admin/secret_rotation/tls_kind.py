"""``tls``: a certificate and its private key, renewed from a CA held in the vault.

target:
  ca_secret: pki/ca              # vault secret: the CA's private key and certificate (PEM)
  common_name: svc.example.com
  sans: [svc.example.com, 10.0.0.5]
  lifetime: 90d                  # of each new certificate (default 90d)
  key_type: ec-p256              # ec-p256 | ec-p384 | rsa-2048 | rsa-3072
  renew_at: 0.67                 # fraction of the lifetime after which it is due (default 2/3)

The vault value is a PEM bundle: the private key, the certificate, then the CA
certificate. ``every`` may be left out: the certificate is due at ``renew_at``
of its own lifetime (from the authenticated version metadata ``tls.not_before``
/ ``tls.not_after`` written at ``finish``, or from the certificate itself for a
value put by hand); with ``every`` set, whichever comes first. A new key is made
at each renewal. ``test`` checks that the certificate verifies under the CA,
belongs to the key, is valid now and names ``common_name``. There is no target
system to change (``apply`` does nothing): consumers read the new bundle from
the vault; the previous certificate stays valid until its own expiry (``retire``
does not revoke it: no CRL/OCSP is published by this tool).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from zerotrust_admin.errors import UsageError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationTestFailed, Rotator, require_keys

DEFAULT_LIFETIME = 90 * 86400
DEFAULT_RENEW_AT = 2 / 3


def _lifetime(target: dict) -> float:
    from zerotrust_admin.sessions.base import parse_duration

    return parse_duration(target.get("lifetime", DEFAULT_LIFETIME), what="lifetime")


def _validity(value: Secret | None) -> tuple[datetime, datetime] | None:
    from zerotrust_admin.crypto import x509

    if value is None:
        return None
    try:
        certs = x509.split_pem(value.reveal())["cert"]
        if not certs:
            return None
        info = x509.info(certs[0])
    except x509.X509Error:
        return None
    finally:
        value.wipe()
    return info.not_before, info.not_after


def _from_metadata(metadata: dict, load_value) -> tuple[datetime, datetime] | None:
    try:
        return (datetime.fromisoformat(metadata["tls.not_before"]), datetime.fromisoformat(metadata["tls.not_after"]))
    except (KeyError, ValueError):
        return _validity(load_value())


class TlsRotator(Rotator):
    kind = "tls"

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        from zerotrust_admin.crypto import x509

        problem = require_keys(target, "ca_secret", "common_name")
        if problem:
            return problem
        if target.get("key_type", "ec-p256") not in x509.KEY_TYPES:
            return f"key_type must be one of {', '.join(x509.KEY_TYPES)}"
        sans = target.get("sans", [])
        if not isinstance(sans, list) or not all(isinstance(n, str) and n for n in sans):
            return "sans must be a list of DNS names or IP addresses"
        renew_at = target.get("renew_at", DEFAULT_RENEW_AT)
        if not isinstance(renew_at, (int, float)) or isinstance(renew_at, bool) or not 0.1 <= renew_at <= 0.95:
            return "renew_at must be a fraction from 0.1 to 0.95"
        try:
            _lifetime(target)
        except UsageError as exc:
            return exc.message
        return None

    @classmethod
    def due_at(cls, entry, created: datetime, metadata: dict, load_value) -> datetime:
        validity = _from_metadata(metadata, load_value)
        candidates = [created + timedelta(seconds=entry.every)] if entry.every else []
        if validity is not None:
            start, end = validity
            candidates.append(start + (end - start) * float(entry.target.get("renew_at", DEFAULT_RENEW_AT)))
        return min(candidates) if candidates else created  # no certificate found and no period: due now

    @classmethod
    def expires_at(cls, metadata: dict, load_value) -> datetime | None:
        validity = _from_metadata(metadata, load_value)
        return validity[1] if validity else None

    def _ca(self) -> tuple[bytes, bytes]:
        from zerotrust_admin.crypto import x509

        bundle = self.ctx.read_secret(str(self.ctx.target["ca_secret"]))
        try:
            parts = x509.split_pem(bundle.reveal())
        finally:
            bundle.wipe()
        if len(parts["key"]) != 1 or not parts["cert"]:
            raise UsageError(f"{self.ctx.target['ca_secret']} must hold the CA's private key and certificate (PEM)")
        return parts["key"][0], parts["cert"][0]

    def create_pending(self, current: Secret | None) -> Secret:
        from zerotrust_admin.crypto import x509

        t = self.ctx.target
        ca_key, ca_cert = self._ca()
        key = x509.generate_key(str(t.get("key_type", "ec-p256")))
        try:
            cert = x509.issue(ca_key, ca_cert, key, str(t["common_name"]), list(t.get("sans", [])), timedelta(seconds=_lifetime(t)))
        except x509.X509Error as exc:
            raise UsageError(f"cannot issue the certificate of {self.ctx.entry.secret}: {exc}") from None
        return Secret(key + cert + ca_cert)

    def test(self, pending: Secret) -> None:
        from zerotrust_admin.crypto import x509

        _ca_key, ca_cert = self._ca()
        parts = x509.split_pem(pending.reveal())
        try:
            if len(parts["key"]) != 1 or not parts["cert"]:
                raise x509.X509Error("the bundle is not one key and its certificate")
            info = x509.check_issued(parts["cert"][0], parts["key"][0], ca_cert, datetime.now(timezone.utc))
        except x509.X509Error as exc:
            raise RotationTestFailed(f"the new certificate of {self.ctx.entry.secret} fails its check: {exc}") from None
        if info.subject != f"CN={self.ctx.target['common_name']}":
            raise RotationTestFailed(f"the new certificate of {self.ctx.entry.secret} names another subject")

    def version_metadata(self, pending: Secret) -> dict:
        from zerotrust_admin.crypto import x509

        info = x509.info(x509.split_pem(pending.reveal())["cert"][0])
        return {"tls.not_before": info.not_before.isoformat(), "tls.not_after": info.not_after.isoformat(),
                "tls.serial": format(info.serial, "x"), "tls.subject": info.subject}

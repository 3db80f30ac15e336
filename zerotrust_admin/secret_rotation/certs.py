"""Every certificate in the vault, managed by ``secret_rotation`` or not, for
``secrets status`` (issue 15): subject, not-after, days left, expired /
expiring.

Finding them means reading every value the principal may read. The rules:

* a name the principal may not ``list`` is left out and not counted; one it
  may list but not ``read`` is not read and is reported by name
  (``not_readable``);
* a secret that needs MFA (``security.mfa``) is read only when the caller
  vouches that a code was given and verified (``mfa``); otherwise it is
  reported by name (``needs_mfa``), never prompted for;
* the tool's own records (``_zerotrust/``) are never read;
* the whole scan is ONE audited record (event ``secret_access``, action
  ``read``, resource ``*``, ``operation: certificate_inventory`` with the
  counts), as ``vault export`` writes one record for all the values it reads:
  10,000 signed records per ``secrets status`` would bury the log and take
  seconds. A failure (a tampered record: exit 5) is audited the same way with
  its error class;
* a value is parsed only when it starts with a PEM header (after whitespace)
  or looks like a DER certificate (a SEQUENCE with a long-form length that
  matches the value's length); nothing else reaches the X.509 parser;
* no value, not even a certificate, is returned: only what the certificate
  says about itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.timeutil import parse_rfc3339, rfc3339, utcnow

RESERVED_PREFIX = "_zerotrust/"
EXPIRING_DAYS = 30
_PEM_HEAD = b"-----BEGIN "


def candidate(head: bytes, size: int) -> bool:
    """Whether a value whose first bytes are ``head`` (64 are enough) and whose
    length is ``size`` may be a PEM or DER certificate, before any parsing."""
    if head[:1] == b"\x30":
        # DER: SEQUENCE, long-form length (a certificate is > 127 bytes) covering the rest exactly.
        if len(head) < 4 or not 0x81 <= head[1] <= 0x83:
            return False
        n = head[1] - 0x80
        if len(head) < 2 + n:
            return False
        return 2 + n + int.from_bytes(head[2:2 + n], "big") == size
    return head.lstrip(b" \t\r\n")[:11] == _PEM_HEAD


def _peek(value) -> bytes:
    """The first 64 bytes of a Secret (a copy of those only, not of the value)."""
    return bytes(value._buf[:64])  # noqa: SLF001 - Secret keeps its bytes in _buf; reveal() would copy all of them


def certificate_inventory(vault, managed: dict, *, may_list: Callable[[str], bool], may_read: Callable[[str], bool],
                          needs_mfa: Callable[[str, bool], bool], mfa: Callable[[str], bool],
                          now: datetime | None = None, expiring_days: int = EXPIRING_DAYS) -> dict:
    """Scan the vault's current values for certificates.

    ``managed``: secret name -> ManagedSecret (the ``secret_rotation`` entries).
    ``needs_mfa(name, sensitive)``: whether reading it needs an MFA code;
    ``mfa(name)``: whether a code was given and verified (called once, at the
    first such secret; it may raise DeniedError for a wrong code).
    Returns ``{"certificates": [...], "inspected", "not_readable": [names],
    "needs_mfa": [names], "expiring_days"}``.
    """
    now = now or utcnow()
    rows: list[dict] = []
    not_readable: list[str] = []
    mfa_skipped: list[str] = []
    mfa_state: list[bool] = []
    inspected = 0
    parse = None
    with vault._audited("read", "*", operation="certificate_inventory") as details:
        wanted = []
        for item in vault._query_list("", False):  # every bucket checked; deleted secrets left out
            name = item.name
            if name.startswith(RESERVED_PREFIX) or not may_list(name):
                continue
            if not may_read(name):
                not_readable.append(name)
            elif needs_mfa(name, bool(getattr(item, "sensitive", False))):
                if not mfa_state:
                    mfa_state.append(bool(mfa(name)))  # before the reads: an MFA check may write its replay record
                (wanted if mfa_state[0] else mfa_skipped).append(name)
            else:
                wanted.append(name)
        # One read transaction for all the reads (no BEGIN and commitment check per secret).
        with vault._read_txn():
            for name in wanted:
                try:
                    value, version = vault._read(name, None)
                except NotFoundError:
                    continue  # deleted since the listing
                inspected += 1
                with value:
                    if not candidate(_peek(value), len(value)):
                        continue
                    if parse is None:
                        from zerotrust_admin.crypto.x509 import certificate_in as parse  # ~20 ms: only once a candidate is seen
                    found = parse(value.reveal())
                if found is not None:
                    rows.append(_row(name, found[0], found[1], version, managed.get(name), now, expiring_days))
        details.update(inspected=inspected, certificates=len(rows), not_readable=len(not_readable), needs_mfa=len(mfa_skipped))
    return {"certificates": rows, "inspected": inspected, "not_readable": not_readable, "needs_mfa": mfa_skipped,
            "expiring_days": expiring_days}


def _row(name, cert, what, version, entry, now, expiring_days) -> dict:
    left = (cert.not_after - now).total_seconds()
    expired = left <= 0
    renew_at = None
    if entry is not None:
        # The configured rotation window: when rotate-secrets renews it (`every` after this version was
        # written; tls also at `renew_at` of the certificate's own lifetime, whichever comes first).
        due = [parse_rfc3339(version.created) + timedelta(seconds=entry.every)] if entry.every else []
        if entry.kind == "tls":
            from zerotrust_admin.secret_rotation.tls_kind import DEFAULT_RENEW_AT

            due.append(cert.not_before + (cert.not_after - cert.not_before) * float(entry.target.get("renew_at", DEFAULT_RENEW_AT)))
        renew_at = min(due) if due else None
    expiring = not expired and (left < expiring_days * 86400 or (renew_at is not None and now >= renew_at))
    return {"secret": name, "version": version.version, "subject": cert.subject, "issuer": cert.issuer,
            "serial": format(cert.serial, "x"), "not_before": rfc3339(cert.not_before), "not_after": rfc3339(cert.not_after),
            "days_left": int(left // 86400) if left > 0 else -int(-left // 86400), "expired": expired, "expiring": expiring,
            "managed": entry is not None, "kind": entry.kind if entry is not None else None,
            "renew_at": rfc3339(renew_at) if renew_at is not None else None,
            "format": what["format"], "certificates_in_value": what["certificates"], "private_key_in_value": what["private_key"],
            "sans": list(cert.sans)}


"""The audit log as OCSF events (Open Cybersecurity Schema Framework 1.7.0).

``audit export --format ocsf`` streams one OCSF event per audit record, one
JSON object per line (the NDJSON that Security Lake, SIEM collectors and
Prowler take), in constant memory: a record is read, mapped, written.

Which class (docs/evidence-bundle.md, "OCSF: the audit log for SIEMs", has the full table):

- ``mfa`` ``verify`` -> Authentication (3002), activity Other (99), ``is_mfa``
- ``mfa`` ``enroll`` / ``reset`` / ``remove`` -> Account Change (3001),
  MFA Factor Enable (10) / Disable (11); the target principal is ``user``
- everything else (secret access, key rotation, credentials, sessions,
  reports, reviews, access denials, the log's own records) -> API Activity
  (6003): Create (1), Read (2), Update (3), Delete (4) from the action,
  Other (99) when none fits

Every event keeps what the record says: ``time`` (ms), ``status_id``
(Success/Failure from ``success``), ``severity_id`` from ``level``, the
operator in ``actor.user`` with their address in ``src_endpoint``, the host
that wrote the record in ``dst_endpoint``, the resource in ``resources``,
and ``metadata.uid`` = the record's chain hash, ``metadata.sequence`` = its
``seq``, so a SIEM copy can be matched to the signed log. The record's
``details`` go to ``unmapped`` as they are (records never hold secrets).
No typer/rich here.
"""

from __future__ import annotations

import json
from datetime import datetime

OCSF_VERSION = "1.7.0"
PRODUCT = {"name": "zerotrust-admin", "vendor_name": "ZeroTrustKerberosLink"}

API_ACTIVITY = (6003, "API Activity", 6, "Application Activity")
AUTHENTICATION = (3002, "Authentication", 3, "Identity & Access Management")
ACCOUNT_CHANGE = (3001, "Account Change", 3, "Identity & Access Management")

API_CREATE, API_READ, API_UPDATE, API_DELETE, OTHER = 1, 2, 3, 4, 99
API_NAMES = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
# audit action -> API Activity activity
API_ACTIONS = {
    "read": API_READ, "list": API_READ, "history": API_READ, "export": API_READ, "report": API_READ, "review": API_READ,
    "status": API_READ, "verify": API_READ, "get": API_READ,
    "write": API_CREATE, "create": API_CREATE, "import": API_CREATE, "issue": API_CREATE, "backup": API_CREATE, "enroll": API_CREATE,
    "rotate": API_UPDATE, "rotated": API_UPDATE, "undelete": API_UPDATE, "restore": API_UPDATE, "migrate": API_UPDATE, "update": API_UPDATE, "unlock": API_UPDATE,
    "delete": API_DELETE, "destroy": API_DELETE, "revoke": API_DELETE, "purge": API_DELETE,
}
ACCOUNT_MFA = {"enroll": (10, "MFA Factor Enable"), "reset": (11, "MFA Factor Disable"), "remove": (11, "MFA Factor Disable"),
               "disable": (11, "MFA Factor Disable")}
SEVERITY = {"debug": (1, "Informational"), "info": (1, "Informational"), "notice": (2, "Low"), "warning": (3, "Medium"),
            "error": (4, "High"), "critical": (5, "Critical")}


def _time_ms(stamp) -> int:
    try:
        return int(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def _user(name) -> dict:
    text = str(name or "unknown")
    user = {"name": text}
    if "@" in text:
        user["domain"] = text.rsplit("@", 1)[1]
    return user


def _principal_of(resource: str, fallback) -> str:
    return resource.split(":", 1)[1] if resource.startswith("principal:") and ":" in resource else str(fallback or "unknown")


def _resource_type(event: str, resource: str) -> str:
    if ":" in resource and not resource.startswith(("http:", "https:")):
        return resource.split(":", 1)[0]
    if "/" in resource and resource.split("/", 1)[0] in ("compliance", "vault", "audit"):
        return resource.split("/", 1)[0]
    return "secret" if event in ("secret_access", "access_denied") else event


def classify(record: dict) -> tuple[tuple, int, str]:
    """(class tuple, activity_id, activity_name) for one audit record."""
    event, action = str(record.get("event") or ""), str(record.get("action") or "")
    if event == "mfa" and action in ACCOUNT_MFA:
        activity, name = ACCOUNT_MFA[action]
        return ACCOUNT_CHANGE, activity, name
    if event == "mfa":
        return AUTHENTICATION, OTHER, "MFA " + (action or "check")
    activity = API_ACTIONS.get(action, OTHER)
    return API_ACTIVITY, activity, API_NAMES[activity] if activity != OTHER else (action or "Other")


def to_ocsf(record: dict, *, product_version: str = "") -> dict:
    """One OCSF event for one audit record."""
    (class_uid, class_name, category_uid, category_name), activity_id, activity_name = classify(record)
    success = record.get("success") is True
    severity_id, severity = SEVERITY.get(str(record.get("level") or "info"), (1, "Informational"))
    event, action = str(record.get("event") or ""), str(record.get("action") or "")
    resource = str(record.get("resource") or "")
    user = _user(record.get("user"))
    metadata = {"version": OCSF_VERSION, "product": {**PRODUCT, **({"version": product_version} if product_version else {})},
                "log_name": "audit", "event_code": event or "unknown", "original_time": str(record.get("timestamp") or "")}
    if isinstance(record.get("seq"), int):
        metadata["sequence"] = record["seq"]
    if record.get("hash"):
        metadata["uid"] = str(record["hash"])
    out = {
        "activity_id": activity_id, "activity_name": activity_name,
        "category_uid": category_uid, "category_name": category_name,
        "class_uid": class_uid, "class_name": class_name,
        "type_uid": class_uid * 100 + activity_id, "type_name": f"{class_name}: {activity_name}",
        "severity_id": severity_id, "severity": severity,
        "status_id": 1 if success else 2, "status": "Success" if success else "Failure",
        "time": _time_ms(record.get("timestamp")),
        "message": " ".join(p for p in (event, action, resource) if p) + ("" if success else " (failed)"),
        "metadata": metadata,
    }
    if record.get("error") is not None or (record.get("details") or {}).get("error") is not None:
        out["status_detail"] = str(record.get("error") if record.get("error") is not None else record["details"]["error"])
    src = {"ip": str(record["source_ip"])} if record.get("source_ip") else {}
    host = {"hostname": str(record["host"])} if record.get("host") else {}
    if class_uid == API_ACTIVITY[0]:
        out["actor"] = {"user": user}
        out["api"] = {"operation": f"{event}.{action}" if action else (event or "unknown"), "service": {"name": "zerotrust-admin"}}
        out["src_endpoint"] = src or {"hostname": host.get("hostname", "unknown")}
        if host:
            out["dst_endpoint"] = host
        if resource:
            out["resources"] = [{"name": resource, "type": _resource_type(event, resource)}]
    elif class_uid == AUTHENTICATION[0]:
        out["user"] = _user(_principal_of(resource, record.get("user")))
        out["actor"] = {"user": user}
        out["is_mfa"] = True
        out["auth_protocol_id"] = 99
        out["auth_protocol"] = "TOTP"
        if src:
            out["src_endpoint"] = src
        if host:
            out["dst_endpoint"] = host
    else:  # Account Change
        out["user"] = _user(_principal_of(resource, record.get("user")))
        out["actor"] = {"user": user}
        if src:
            out["src_endpoint"] = src
    unmapped = {k: v for k, v in record.items() if k not in ("timestamp", "user", "source_ip", "host", "success", "level", "seq", "hash")}
    if unmapped:
        out["unmapped"] = unmapped
    return out


def export_ocsf(records, out, *, product_version: str = "") -> int:
    """Write one OCSF JSON line per record to the binary stream ``out``; returns the count."""
    count = 0
    encode = _ENCODER.encode  # one encoder for the whole stream (json.dumps with options builds one per call)
    for record in records:
        out.write(encode(to_ocsf(record, product_version=product_version)).encode("utf-8") + b"\n")
        count += 1
    return count


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def export_json(records, out) -> int:
    count = 0
    for record in records:
        out.write(_ENCODER.encode(record).encode("utf-8") + b"\n")
        count += 1
    return count


def export_log(log, fmt: str, output=None, *, product_version: str = "") -> int:
    """``audit export``: every record of ``log`` as ``fmt`` (``ocsf`` or
    ``json``) to ``output`` (written to a new 0600 temporary file beside it,
    then renamed: a failure leaves no partial file) or to stdout."""
    import os
    import sys
    from pathlib import Path

    from zerotrust_admin import fsutil
    from zerotrust_admin.errors import ZeroTrustError

    def write(stream) -> int:
        if fmt == "ocsf":
            return export_ocsf(log.records(), stream, product_version=product_version)
        return export_json(log.records(), stream)

    if output is None:
        stream = sys.stdout.buffer
        try:
            count = write(stream)
            stream.flush()
        except BrokenPipeError:  # a reader that stopped early (head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        return count
    target = Path(output).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ZeroTrustError(f"cannot write the export: directory {parent} does not exist", hint="create it or choose another --output")
    if target.is_dir():
        raise ZeroTrustError(f"cannot write the export to {target}: it is a directory")
    tmp = parent / f".{target.name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ZeroTrustError(f"cannot write the export to {target}: {exc.strerror}", hint="choose a writable --output path") from None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            count = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsutil.fsync_dir(parent)
    return count

"""``keys status``: every key with id, kind, created, age, next due, state."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import hmac_sha256
from zerotrust_admin.rotation.schedule import UNROTATABLE_SOURCES, Policy, describe_age, effective_source_kind
from zerotrust_admin.timeutil import parse_rfc3339, rfc3339, utcnow
from zerotrust_admin.vault import format as fmt


def _row(kind: str, key_id: str, created: str | None, now: datetime, *, interval=None, state: str, source: str = "", note: str = "") -> dict:
    created_dt = parse_rfc3339(created) if created else None
    age = (now - created_dt).total_seconds() if created_dt else None
    due = created_dt + interval if (created_dt and interval is not None) else None
    overdue = bool(due and now >= due and state in ("active", "current"))
    if overdue:
        state = "overdue"
    return {
        "id": key_id, "kind": kind, "source": source, "created": created,
        "age_seconds": int(age) if age is not None else None, "age": describe_age(age) if age is not None else "",
        "next_due": rfc3339(due) if due else None, "state": state, "overdue": overdue, "note": note,
    }


def key_status(vault, policy: Policy, *, audit_key_path: Path | None = None, now: datetime | None = None) -> list[dict]:
    now = now or utcnow()
    meta = vault.reload_meta()
    source = effective_source_kind(vault)
    rows = []
    master_note = ""
    if fmt.META_MASTER_PENDING in meta or fmt.META_MASTER_RETIRING in meta:
        master_note = "interrupted change: re-run rotate-keys to finish it"
    elif source in UNROTATABLE_SOURCES:
        master_note = "rotated outside this tool"
    rows.append(_row("master", meta["master_key_id"], meta.get("master_created") or meta.get("created"), now,
                     interval=None if source in UNROTATABLE_SOURCES else policy.interval("master"),
                     state="active", source=source, note=master_note))
    provider_status = getattr(vault.key_source, "provider_key_status", None)
    if provider_status is not None:
        try:
            info = provider_status()
            rows[-1]["note"] = (rows[-1]["note"] + "; " if rows[-1]["note"] else "") + f"{info.get('key_id')} version {info.get('version')}"
        except Exception as exc:  # noqa: BLE001 - status must still show the local keys
            rows[-1]["note"] = f"provider key status unavailable ({type(exc).__name__})"
    for dek in vault.list_deks():
        if dek.state == "active":
            rows.append(_row("dek", dek.id, dek.created, now, interval=policy.interval("dek"), state="active",
                             note=f"{dek.versions} versions"))
        else:
            rows.append(_row("dek", dek.id, dek.created, now, state="retired",
                             note=f"{dek.versions} versions left to re-encrypt" if dek.versions else "unreferenced; deleted by the next rotation"))
    for sk in vault.session_keys():
        if sk.state == "current":
            rows.append(_row("session", sk.id, sk.created, now, interval=policy.interval("session"), state="current"))
        else:
            rows.append(_row("session", sk.id, sk.created, now, state="previous", note="verifies only; dropped at the next rotation"))
    if audit_key_path is not None and os.path.lexists(audit_key_path):
        key = base64.b64decode(fsutil.read_private_file(audit_key_path, what="audit key file").strip())
        created = rfc3339(datetime.fromtimestamp(os.stat(audit_key_path).st_mtime, timezone.utc))
        # The id is a MAC of a constant under the key: it names the key without revealing it.
        rows.append(_row("audit", hmac_sha256(key, b"zt-key-id").hex()[:16], created, now, state="active",
                         source="file", note="not rotated: keys the audit chain"))
    return rows


def status_summary(rows: list[dict]) -> dict:
    return {"keys": rows, "overdue": sum(1 for r in rows if r["overdue"]),
            "interrupted": any(r["kind"] == "master" and "interrupted" in r["note"] for r in rows)
            or any(r["kind"] == "dek" and r["state"] == "retired" for r in rows)}


def dumps(rows: list[dict]) -> str:
    return json.dumps(rows)


def provider_row(status: dict | None) -> dict | None:
    """A ``keys status`` row for the secret provider's own key (AWS KMS, Azure,
    Vault transit), from ``SecretProvider.provider_key_status()``."""
    if not status:
        return None
    created = status.get("created") or None
    now = utcnow()
    age = (now - parse_rfc3339(created)).total_seconds() if created else None
    next_due = status.get("next_due")
    overdue = bool(next_due and now >= parse_rfc3339(next_due))
    note = f"rotation: {status.get('rotation')}" if status.get("rotation") else ""
    if status.get("version") is not None:
        note = f"version {status['version']}" + (f"; {note}" if note else "")
    return {"id": str(status.get("key_id", "")), "kind": "provider", "source": f"{status.get('provider', '')}:{status.get('kind', '')}",
            "created": created, "age_seconds": int(age) if age is not None else None, "age": describe_age(age) if age is not None else "",
            "next_due": next_due, "state": "overdue" if overdue else str(status.get("state") or "active"), "overdue": overdue, "note": note}

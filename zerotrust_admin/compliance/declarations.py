"""Scope declarations, attestations and accepted risks, recorded in the audit
log (signed, hash-chained) and read back by the report's single pass.

- ``compliance scope``: what is in scope (cardholder data, PHI, personal
  data, availability). A requirement tied to a scope is N/A, citing the
  declaration (who, when, which record), unless the scope is declared in.
- ``compliance attest``: a reviewer signed off a process or document
  requirement; the record holds the document's name and SHA-256, the
  reviewer and the expiry. A MANUAL requirement becomes PASS citing it, and
  WARNING once it has expired.
- ``compliance accept-risk``: an accepted risk (owner, reason, expiry) for a
  failing requirement. It never turns the requirement green: the row keeps
  its status and the report lists the exception on a page of its own.

No typer/rich here.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from pathlib import Path

from zerotrust_admin.compliance.requirements import SCOPES
from zerotrust_admin.errors import NotFoundError, UsageError

ACTION = "report"  # the access-policy action for compliance work (access/policy.py ACTIONS)


def _expiry(text: str, today: datetime | None = None) -> str:
    try:
        day = date.fromisoformat(str(text))
    except ValueError:
        raise UsageError(f"--expires {text!r} is not a date", hint="use YYYY-MM-DD") from None
    today = (today or datetime.now(timezone.utc)).date()
    if day <= today:
        raise UsageError(f"--expires {day.isoformat()} is not in the future", hint="give the date the document or decision must be reviewed again")
    return day.isoformat() + "T23:59:59Z"


def _requirement(requirement: str, standard: str | None) -> tuple[str, str | None]:
    from zerotrust_admin.compliance.report import STANDARDS, load_standard, resolve_standards, standard_requirements

    sids = resolve_standards(standard) if standard else list(STANDARDS)
    found = [sid for sid in sids if any(r["id"] == requirement for _s, r in standard_requirements(load_standard(sid)))]
    if not found:
        where = f"in {sids[0]}" if standard else "in any standard"
        raise NotFoundError(f"no requirement {requirement!r} {where}", hint="use the ID as the report prints it, e.g. 12.10.1, CC7.4, IA-5d")
    return requirement, (sids[0] if standard else None)


def record_scope(audit, actor, declarations: dict[str, bool], note: str = "") -> dict:
    if not declarations:
        raise UsageError("nothing to declare", hint="give at least one of --cardholder-data, --phi, --personal-data, --availability (yes/no)")
    unknown = sorted(set(declarations) - set(SCOPES))
    if unknown:
        raise UsageError(f"unknown scope {unknown[0]!r}", hint=f"known: {', '.join(SCOPES)}")
    return audit.append(event="compliance_scope", action=ACTION, resource="compliance/scope", success=True, actor=actor,
                        scope=dict(sorted(declarations.items())), note=note or None)


def record_attestation(audit, actor, requirement: str, document: str | Path, reviewer: str, expires: str, standard: str | None = None) -> dict:
    req, sid = _requirement(requirement, standard)
    if not reviewer.strip():
        raise UsageError("--reviewer is empty", hint="name the person who reviewed the document")
    path = Path(document).expanduser()
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise NotFoundError(f"document {path} not found", hint="give the file the reviewer signed off") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory", hint="give the file the reviewer signed off") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied") from None
    return audit.append(event="compliance_attestation", action=ACTION, resource=f"compliance/requirement/{req}", success=True, actor=actor,
                        requirement=req, standard=sid, document=path.name, document_sha256=digest.hexdigest(), reviewer=reviewer.strip(),
                        expires=_expiry(expires))


def record_exception(audit, actor, requirement: str, owner: str, reason: str, expires: str, standard: str | None = None) -> dict:
    req, sid = _requirement(requirement, standard)
    if not owner.strip() or not reason.strip():
        raise UsageError("--owner and --reason are required", hint="an accepted risk needs someone who owns it and why")
    return audit.append(event="compliance_exception", action=ACTION, resource=f"compliance/requirement/{req}", success=True, actor=actor,
                        requirement=req, standard=sid, owner=owner.strip(), reason=reason.strip(), expires=_expiry(expires))

"""The JSON report's contract: its schema version and the evidence hash.

``docs/compliance-schema.json`` is the JSON Schema of the ``.json`` report;
``SCHEMA_VERSION`` is written into every report as ``schema_version``. A
change that removes or retypes a field bumps the major number; adding an
optional field bumps the minor number.

The evidence hash (``hashes.evidence_sha256``) is recomputable from the JSON
report alone::

    sha256( canonical({"anomalies": report["anomalies"], "evidence": report["evidence"]}) )

where ``canonical`` is the audit log's canonical JSON (docs/audit-format.md:
sorted keys, no whitespace, UTF-8, only the mandatory escapes) and floats
are written as Python's shortest round-trip ``repr``. The report holds the
values after a JSON round trip (non-JSON values such as times are already
strings there), so what is hashed is exactly what the file holds.
No typer/rich, no heavy imports.
"""

from __future__ import annotations

import hashlib
import json

SCHEMA_VERSION = "1.1"


def percent_text(percent: float | None) -> str:
    """A standard's score for people: "n/a" when nothing was scored (all N/A or manual)."""
    return "n/a" if percent is None else f"{percent}%"
SCHEMA_ID = "urn:zerotrust-admin:compliance-report"
EVIDENCE_MEMBERS = ("anomalies", "evidence")


def canonical(obj) -> bytes:
    """Canonical JSON bytes (the audit log's rules; floats as Python ``repr``)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def as_json_values(obj):
    """``obj`` as the JSON report will hold it (tuples as lists, times and
    other non-JSON values as ``str``, integer keys as strings)."""
    return json.loads(json.dumps(obj, default=str))


def evidence_document(report: dict) -> dict:
    """The object the evidence hash covers, taken from a report (built or loaded from JSON)."""
    return {name: report.get(name) for name in EVIDENCE_MEMBERS}


def evidence_sha256(report: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of the report's evidence members."""
    return hashlib.sha256(canonical(evidence_document(report))).hexdigest()


def load_schema() -> dict:
    """The report schema shipped in docs/ (for tests and tooling; not used at run time)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "compliance-schema.json"
    return json.loads(path.read_text(encoding="utf-8"))

"""The records the vault hands out (never values), and the value rules."""

from __future__ import annotations

import json

from zerotrust_admin.errors import UsageError
from zerotrust_admin.structs import asdict, field, struct

MAX_VALUE_BYTES = 1 << 20  # 1 MiB: keytabs and DER keys are KBs; larger is a mistake


@struct(frozen=True)
class VersionInfo:
    name: str
    version: int
    created: str
    created_by: str
    size: int
    dek_id: str
    metadata: dict
    current: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@struct(frozen=True)
class SecretInfo:
    name: str
    current_version: int
    created: str
    updated: str
    sensitive: bool
    deleted_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@struct(frozen=True)
class DekInfo:
    id: str
    master_key_id: str
    created: str
    state: str  # active | retired
    versions: int

    def to_dict(self) -> dict:
        return asdict(self)


@struct(frozen=True)
class SessionKeyInfo:
    id: str
    created: str
    state: str  # current | previous

    def to_dict(self) -> dict:
        return asdict(self)


@struct
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # False: no current value was read (the caller may not read them, threat model P3),
    # every item was written as a new version. None: the provider did not say.
    # In the import's audit record (details.compared), not in to_dict (the --json counts).
    compared: bool | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def _loads(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _check_value(value: bytes, name: str | None = None) -> None:
    where = f" for {name!r}" if name else ""
    if not isinstance(value, (bytes, bytearray)):
        raise UsageError("a secret value must be bytes")
    if len(value) == 0:
        raise UsageError(f"empty secret value{where}", hint="nothing was written; pipe the value on stdin or use --value-file")
    if len(value) > MAX_VALUE_BYTES:
        raise UsageError(f"secret value{where} is {len(value)} bytes; the limit is {MAX_VALUE_BYTES}")

"""Where a rotation's progress lives: authenticated version metadata in the
integrated vault, never a side file.

For a managed secret ``NAME`` the engine keeps the record
``_zerotrust/rotation/NAME`` (reserved: the normal vault commands cannot read
it). Each step of a rotation writes one new version of it whose value is the
rotation's new credential and whose metadata says how far it got::

    kind, rotation (random id), step (creating | created | applied | tested | finished | retired | rolled_back),
    stage (pending | current), from_version, to_version, started, updated,
    retire_after, result (ok | failed:<ErrorClass>), failed_step

The version MAC covers the metadata (docs/vault-format.md), so an edited step
or retire time is exit 5, not a decision. When the rotation finishes, the new
credential becomes a new version of ``NAME`` itself (what consumers read),
with metadata ``rotation.stage=current``, ``rotation.id``, ``rotation.kind``
and ``rotation.previous_version``; the version it replaced is the previous
stage until ``retire``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.secret import Secret
from zerotrust_admin.timeutil import parse_rfc3339

PREFIX = "_zerotrust/rotation/"
IN_FLIGHT = ("created", "applied", "tested")
CREATING = "creating"  # a kind whose target makes the value (aws-iam) records this before asking it
STEPS = (CREATING, "created", "applied", "tested", "finished", "retired", "rolled_back")


def state_name(secret: str) -> str:
    return PREFIX + secret


@dataclass
class RotationState:
    meta: dict = field(default_factory=dict)
    version: int = 0

    @property
    def step(self) -> str:
        return self.meta.get("step", "")

    @property
    def rotation(self) -> str:
        return self.meta.get("rotation", "")

    def time(self, key: str) -> datetime | None:
        text = self.meta.get(key)
        return parse_rfc3339(text) if text else None

    def int_of(self, key: str) -> int | None:
        text = self.meta.get(key, "")
        return int(text) if text.isdigit() else None

    def to_dict(self) -> dict:
        return {"step": self.step, "rotation": self.rotation, "stage": self.meta.get("stage", ""),
                "from_version": self.int_of("from_version"), "to_version": self.int_of("to_version"),
                "started": self.meta.get("started"), "updated": self.meta.get("updated"),
                "retire_after": self.meta.get("retire_after"), "result": self.meta.get("result", "")}


def current_value(vault, name: str) -> Secret | None:
    """The current value, authenticated, without an audit record: only for a kind
    whose schedule depends on its (non-secret) content, such as a certificate's
    validity, when its metadata does not say it."""
    try:
        value, _info = vault._read(name, None)
    except NotFoundError:
        return None
    return value


def _current_info(vault, name: str):
    """The current version's authenticated VersionInfo (its MAC checked, its value
    decrypted and wiped at once), or None. Not audited, like ``vault info``: the
    plan and ``secrets status`` read metadata of every managed secret on every
    run, and the rotation steps themselves are audited."""
    try:
        value, info = vault._read(name, None)
    except NotFoundError:
        return None
    value.wipe()
    return info


def read_state(vault, secret: str) -> RotationState | None:
    """The newest state record's authenticated metadata."""
    info = _current_info(vault, state_name(secret))
    if info is None:
        return None
    meta = dict(info.metadata)
    if meta.get("step") not in STEPS:
        return None
    return RotationState(meta, info.version)


def read_pending(vault, secret: str, state: RotationState) -> Secret:
    value, _info = vault.get(state_name(secret), version=state.version)
    return value


def write_state(vault, secret: str, value: Secret, meta: dict) -> RotationState:
    info = vault.put(state_name(secret), value.reveal(), metadata=meta)
    return RotationState(dict(info.metadata), info.version)


def newest_metadata(vault, secret: str) -> tuple[int, dict, str] | None:
    """(current version, its metadata, its created time) of the managed secret, or
    None when it does not exist (or is deleted)."""
    info = _current_info(vault, secret)
    if info is None:
        return None
    return info.version, dict(info.metadata), info.created

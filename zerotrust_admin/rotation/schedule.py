"""What is due: ``encryption.rotation`` (master 90 days, DEKs 30 days, session
keys 24 hours by default) applied to the keys' creation times."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.structs import asdict, struct
from zerotrust_admin.timeutil import parse_rfc3339, rfc3339, utcnow
from zerotrust_admin.vault import format as fmt

KINDS = ("master", "dek", "session")
# Sources whose key cannot be replaced by this tool (it comes from outside).
UNROTATABLE_SOURCES = {"env": "the master key comes from ZEROTRUST_ENCRYPTION_KEY; rotate it where it is injected, or move to a key file/HSM with 'keys migrate'"}


@struct(frozen=True)
class Policy:
    master_days: int = 90
    dek_days: int = 30
    session_hours: int = 24
    enabled: bool = True

    @classmethod
    def from_config(cls, data: dict) -> "Policy":
        rot = ((data or {}).get("encryption") or {}).get("rotation") or {}
        policy = cls(
            master_days=int(rot.get("master_days", cls.master_days)),
            dek_days=int(rot.get("dek_days", cls.dek_days)),
            session_hours=int(rot.get("session_hours", cls.session_hours)),
            enabled=bool(rot.get("enabled", True)),
        )
        for name in ("master_days", "dek_days", "session_hours"):
            if getattr(policy, name) < 1:
                raise ConfigError(f"encryption.rotation.{name} must be at least 1")
        return policy

    def interval(self, kind: str) -> timedelta:
        return {"master": timedelta(days=self.master_days), "dek": timedelta(days=self.dek_days),
                "session": timedelta(hours=self.session_hours)}[kind]


@struct
class PlanItem:
    kind: str             # master | dek | session
    key_id: str | None
    created: str | None
    due_at: str | None
    action: bool          # will this run rotate it?
    reason: str           # due | forced | resume | not due | none | manual | disabled

    def to_dict(self) -> dict:
        return asdict(self)


def _current_keys(vault) -> dict:
    meta = vault.reload_meta()
    deks = vault.list_deks()
    active = [d for d in deks if d.state == "active"]
    retired = [d for d in deks if d.state == "retired"]
    sessions = [s for s in vault.session_keys() if s.state == "current"]
    return {
        "master": (meta["master_key_id"], meta.get("master_created") or meta.get("created"),
                   fmt.META_MASTER_PENDING in meta or fmt.META_MASTER_RETIRING in meta),
        "dek": (active[-1].id if active else None, active[-1].created if active else None, bool(retired)),
        "session": (sessions[0].id if sessions else None, sessions[0].created if sessions else None, False),
        "master_source": effective_source_kind(vault),
    }


def effective_source_kind(vault) -> str:
    try:
        return vault.key_source.describe().get("kind") or vault.meta["master_source"]
    except Exception:  # noqa: BLE001 - a describe() failure must not break planning
        return vault.meta["master_source"]


def plan(vault, policy: Policy, *, force: set[str] = frozenset(), now: datetime | None = None) -> list[PlanItem]:
    """One item per kind, saying whether this run rotates it and why."""
    now = now or utcnow()
    keys = _current_keys(vault)
    items = []
    for kind in KINDS:
        key_id, created, interrupted = keys[kind]
        due_at = parse_rfc3339(created) + policy.interval(kind) if created else None
        if kind == "master" and keys["master_source"] in UNROTATABLE_SOURCES:
            reason, action = ("manual", False)
        elif interrupted:
            reason, action = "resume", True
        elif kind in force:
            reason, action = "forced", True
        elif key_id is None:
            reason, action = "none", False
        elif not policy.enabled:
            reason, action = "disabled", False
        elif due_at is not None and now >= due_at:
            reason, action = "due", True
        else:
            reason, action = "not due", False
        items.append(PlanItem(kind, key_id, created, rfc3339(due_at) if due_at else None, action, reason))
    return items


def describe_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def loads(text: str | None) -> dict | None:
    return json.loads(text) if text else None

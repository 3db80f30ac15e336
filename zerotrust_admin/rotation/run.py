"""``rotate-keys`` and ``keys migrate`` as library calls: plan, lock, rotate,
audit. The CLI parses options, calls one of these, and renders the result."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from zerotrust_admin.errors import AuditError, UsageError, ZeroTrustError
from zerotrust_admin.rotation import dek as dek_rotation
from zerotrust_admin.rotation import master as master_rotation
from zerotrust_admin.rotation.schedule import KINDS, UNROTATABLE_SOURCES, Policy, effective_source_kind, plan

LOCK_NAME = "rotate-keys"
LOCK_TTL = 60.0
RESOURCES = {"master": "master-key", "dek": "data-key", "session": "session-key"}


def _audit(vault, kind: str, success: bool, **details) -> None:
    if vault.audit is None or vault.actor is None:
        return
    vault.audit.append(event="key_rotation", action="rotate", resource=RESOURCES.get(kind, kind), success=success,
                       actor=vault.actor, key_kind=kind, vault_id=vault.vault_id, vault=vault.commitment(), **details)


def _lock(config, wait: float):
    from zerotrust_admin.sessions.lock import distributed_lock

    return distributed_lock(config, LOCK_NAME, ttl=LOCK_TTL, wait=wait)


def rotate_keys(vault, config, kctx, *, force: set[str] | None = None, dry_run: bool = False, now: datetime | None = None,
                progress: Callable[[int, int], None] | None = None, checkpoint: Callable[[str], None] | None = None,
                lock_wait: float = 0.0, batch: int = dek_rotation.DEFAULT_BATCH) -> dict:
    """Rotate what is due (or forced). With nothing due this is a successful no-op."""
    force = set(force or ())
    unknown = force - set(KINDS)
    if unknown:
        raise UsageError(f"unknown key kind(s): {', '.join(sorted(unknown))}")
    policy = Policy.from_config(config.data)
    if "master" in force and effective_source_kind(vault) in UNROTATABLE_SOURCES:
        raise UsageError(f"cannot rotate the master key: {UNROTATABLE_SOURCES[effective_source_kind(vault)]}")
    items = plan(vault, policy, force=force, now=now)
    result = {"dry_run": dry_run, "plan": [i.to_dict() for i in items], "rotated": []}
    if dry_run or not any(i.action for i in items):
        result["nothing_due"] = not any(i.action for i in items)
        return result
    outer_checkpoint = checkpoint or (lambda _: None)
    try:
        lock_cm = _lock(config, lock_wait)
        lock = lock_cm.__enter__()
    except ZeroTrustError as exc:
        _audit(vault, "all", False, error=type(exc).__name__, reason="lock")
        raise
    def checkpoint(step: str) -> None:
        lock.check()  # a Redis lock whose renewal failed: stop between steps rather than race another host
        outer_checkpoint(step)

    try:
        checkpoint("locked")
        # First finish or undo an interrupted master key change (a no-op when
        # there is none), then re-plan under the lock: another run may have
        # just done the work.
        try:
            recovered = master_rotation.recover(vault, kctx, checkpoint)
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                _audit(vault, "master", False, error=type(exc).__name__, reason="resume")
            raise
        if recovered:
            _audit(vault, "master", True, reason="resume", recovered=recovered)
            result["recovered"] = recovered
        items = plan(vault, policy, force=force, now=now)
        result["plan"] = [i.to_dict() for i in items]
        for item in items:
            if not item.action:
                continue
            try:
                if item.kind == "master":
                    outcome = master_rotation.change_master(vault, kctx, checkpoint=checkpoint)
                    details = {"old_key_id": outcome["old_master_key_id"], "new_key_id": outcome["new_master_key_id"],
                               "data_keys_rewrapped": outcome["data_keys"], "source": outcome["to"]}
                elif item.kind == "dek":
                    outcome = dek_rotation.rotate_dek(vault, batch=batch, progress=progress, checkpoint=checkpoint)
                    details = {"old_key_ids": outcome["retired_dek_ids"], "new_key_id": outcome["new_dek_id"],
                               "versions_reencrypted": outcome["reencrypted"], "resumed": outcome["resumed"]}
                else:
                    new_id, previous, removed = vault.rotate_session_key()
                    outcome = {"new_key_id": new_id, "previous_key_id": previous, "removed_key_ids": removed}
                    details = {"new_key_id": new_id, "old_key_ids": [k for k in [previous, *removed] if k]}
                    checkpoint("session-rotated")
            except ZeroTrustError as exc:
                if not isinstance(exc, AuditError):
                    _audit(vault, item.kind, False, error=type(exc).__name__, reason=item.reason)
                raise
            _audit(vault, item.kind, True, reason=item.reason, **details)
            result["rotated"].append({"kind": item.kind, "reason": item.reason, **outcome})
    finally:
        lock_cm.__exit__(None, None, None)
    result["nothing_due"] = False
    return result


def migrate_master(vault, config, kctx, *, to: str, dry_run: bool = False, checkpoint: Callable[[str], None] | None = None,
                   lock_wait: float = 0.0) -> dict:
    """Move the master key between a key file and the HSM (both directions)."""
    target = master_rotation.normalize_target(to)
    current = effective_source_kind(vault)
    plan_info = {"from": current, "to": target, "master_key_id": vault.master_key_id, "data_keys": len(vault.list_deks()),
                 "session_keys": len(vault.session_keys()), "dry_run": dry_run}
    if current == target:
        raise UsageError(f"the vault's master key is already a {target} key")
    if current in UNROTATABLE_SOURCES:
        raise UsageError(f"cannot migrate: {UNROTATABLE_SOURCES[current]}")
    master_rotation.require_configured_target(kctx, target)
    if dry_run:
        if target == "pkcs11":
            from zerotrust_admin.keys.pkcs11 import hsm_settings

            plan_info["hsm"] = hsm_settings(kctx).location  # validates the config without touching the token
        return plan_info
    try:
        with _lock(config, lock_wait):
            outcome = master_rotation.change_master(vault, kctx, target=target, checkpoint=checkpoint)
    except ZeroTrustError as exc:
        if not isinstance(exc, AuditError):
            _audit(vault, "master", False, error=type(exc).__name__, mode="migrate", source=current, target=target)
        raise
    _audit(vault, "master", True, mode="migrate", old_key_id=outcome["old_master_key_id"], new_key_id=outcome["new_master_key_id"],
           source=current, target=target, data_keys_rewrapped=outcome["data_keys"])
    return {**plan_info, **outcome, "dry_run": False}


def rotate_provider(provider, config, *, dry_run: bool = False, lock_wait: float = 0.0) -> dict | None:
    """Rotate the external secret provider's own key (KMS, transit) under the
    rotation lock; the provider audits it. None when the provider has no key to rotate."""
    if dry_run:
        return provider.rotate_provider_key(dry_run=True)
    with _lock(config, lock_wait):
        return provider.rotate_provider_key()

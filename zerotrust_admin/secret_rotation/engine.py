"""``rotate-secrets`` and ``secrets status`` as library calls.

The state machine for one managed secret (each arrow is one authenticated
state-record version, see ``state.py``)::

    (none | retired | rolled_back) --create_pending--> created --apply--> applied
        --test--> tested --finish--> finished --(after grace) retire--> retired
    created | applied --(apply or test fails) rollback--> rolled_back

A run first resumes whatever a crash left in ``created``/``applied``/``tested``
(every step is idempotent, so re-doing the step that was under way is safe),
retires a previous credential whose grace period is over, then starts the
rotations that are due (or forced). Until ``finish`` the managed secret's
current version is untouched; until ``retire`` the previous credential is
kept in the target.
"""

from __future__ import annotations

import secrets as pyrandom
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from zerotrust_admin.errors import AuditError, BusyError, NotFoundError, UsageError, ZeroTrustError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationContext, RotationTestFailed
from zerotrust_admin.secret_rotation.config import ManagedSecret, load_managed
from zerotrust_admin.secret_rotation.registry import rotator_class
from zerotrust_admin.secret_rotation.state import CREATING, IN_FLIGHT, RotationState, current_value, newest_metadata, read_pending, read_state, write_state
from zerotrust_admin.timeutil import parse_rfc3339, rfc3339, utcnow

LOCK_NAME = "rotate-secrets"
LOCK_TTL = 60.0
EVENT = "secret_rotation"


@dataclass
class PlanItem:
    secret: str
    kind: str
    action: str        # rotate | resume | retire | wait | none
    reason: str
    due_at: str | None = None
    step: str = ""

    def to_dict(self) -> dict:
        return {"secret": self.secret, "kind": self.kind, "action": self.action, "reason": self.reason,
                "due_at": self.due_at, "step": self.step}


def _entry_plan(vault, entry: ManagedSecret, now: datetime, forced: bool) -> PlanItem:
    state = read_state(vault, entry.secret)
    current = newest_metadata(vault, entry.secret)
    step = state.step if state else ""
    if state and (step in IN_FLIGHT or step == CREATING):
        return PlanItem(entry.secret, entry.kind, "resume", f"an interrupted rotation stopped after '{step}'", step=step)
    if state and step == "finished":
        retire_after = state.time("retire_after")
        if retire_after is None or now >= retire_after:
            return PlanItem(entry.secret, entry.kind, "retire", "the previous credential's grace period is over", step=step)
        if forced:
            raise UsageError(f"{entry.secret}: the previous credential is in its grace period until {state.meta['retire_after']}; "
                             "a new rotation now would cut it short",
                             hint="run rotate-secrets again after that time (it retires the previous credential first)")
        return PlanItem(entry.secret, entry.kind, "wait", "the previous credential is in its grace period",
                        due_at=state.meta.get("retire_after"), step=step)
    if current is None:
        if _deleted(vault, entry.secret):
            return PlanItem(entry.secret, entry.kind, "none", "deleted in the vault: not rotated (undelete it, or remove its secret_rotation entry)", step=step)
        return PlanItem(entry.secret, entry.kind, "rotate", "the secret does not exist yet: first value" if not forced else "forced", step=step)
    _version, meta, created = current
    due = rotator_class(entry.kind).due_at(entry, parse_rfc3339(created), meta, lambda: current_value(vault, entry.secret))
    if forced:
        return PlanItem(entry.secret, entry.kind, "rotate", "forced", rfc3339(due), step)
    if now >= due:
        return PlanItem(entry.secret, entry.kind, "rotate", "due", rfc3339(due), step)
    return PlanItem(entry.secret, entry.kind, "none", "not due", rfc3339(due), step)


def _deleted(vault, name: str) -> bool:
    try:
        return vault.info(name).deleted_at is not None
    except NotFoundError:
        return False


def plan(vault, entries: list[ManagedSecret], *, force: set[str], now: datetime) -> list[PlanItem]:
    return [_entry_plan(vault, e, now, e.secret in force) for e in entries]


def select(config, names: list[str] | None) -> tuple[list[ManagedSecret], set[str]]:
    entries = load_managed(config)
    force = set(names or [])
    known = {e.secret for e in entries}
    unknown = sorted(force - known)
    if unknown:
        raise NotFoundError(f"{unknown[0]!r} is not a managed secret (no secret_rotation entry names it)",
                            hint="see the managed secrets with: zerotrust-admin secrets status")
    return entries, force


class ChangedMeanwhile(UsageError):
    """The managed secret got a new version from someone else during its rotation."""


class _Runner:
    """Drives one entry through its steps, recording each one."""

    def __init__(self, vault, entry: ManagedSecret, checkpoint: Callable[[str], None], now: datetime):
        self.vault = vault
        self.entry = entry
        self.checkpoint = checkpoint
        self.now = now
        self.name = entry.secret
        self.rotator = rotator_class(entry.kind)(RotationContext(entry, self._read))
        self.steps: list[str] = []

    def _read(self, name: str) -> Secret:
        value, _info = self.vault.get(name)
        return value

    def _version(self, version: int | None) -> Secret | None:
        if version is None:
            return None
        value, _info = self.vault.get(self.name, version=version)
        return value

    def _audit(self, step: str, success: bool, state_meta: dict, **details) -> None:
        vault = self.vault
        if vault.audit is None or vault.actor is None:
            return
        vault.audit.append(event=EVENT, action="rotate", resource=self.name, success=success, actor=vault.actor,
                           kind=self.entry.kind, step=step, rotation=state_meta.get("rotation", ""), **details)

    def _record(self, value: Secret, meta: dict, step: str, **changes) -> RotationState:
        meta = {**meta, **{k: str(v) for k, v in changes.items()}, "step": step, "updated": rfc3339(), "result": "ok"}
        meta.pop("failed_step", None)
        state = write_state(self.vault, self.name, value, meta)
        self._audit(step, True, meta)
        self.steps.append(step)
        self.checkpoint(step)
        return state

    # --- the steps ---------------------------------------------------------
    def create(self, interrupted: RotationState | None = None) -> tuple[RotationState, Secret]:
        """create_pending, recorded as ``created``. ``interrupted``: a ``creating``
        record left by a crash (its target may hold what the crashed run made)."""
        current = newest_metadata(self.vault, self.name)
        from_version = current[0] if current else None
        meta = {"kind": self.entry.kind, "rotation": interrupted.rotation if interrupted else pyrandom.token_hex(8), "stage": "pending",
                "started": interrupted.meta.get("started", rfc3339()) if interrupted else rfc3339(),
                "from_version": "" if from_version is None else str(from_version), "to_version": "", "retire_after": ""}
        self.rotator.ctx.orphans_after = interrupted.time("started") if interrupted else None
        if self.rotator.creates_in_target and interrupted is None:
            self._record(Secret(b"-"), meta, CREATING)
        try:
            pending = self.rotator.create_pending(self._version(from_version))
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self._audit("created", False, meta, error=type(exc).__name__)
            raise
        self.checkpoint("create:generated")
        return self._record(pending, meta, "created"), pending

    def advance(self, state: RotationState, pending: Secret) -> RotationState:
        meta = state.meta
        current = self._version(state.int_of("from_version"))
        while state.step in IN_FLIGHT:
            step = state.step
            try:
                if step == "created":
                    self.rotator.apply(pending, current)
                    self.checkpoint("apply:target")
                    state = self._record(pending, meta, "applied")
                elif step == "applied":
                    self.rotator.test(pending)
                    state = self._record(pending, meta, "tested")
                else:
                    state = self._finish(state, pending, current)
            except ZeroTrustError as exc:
                if isinstance(exc, AuditError):
                    raise
                if step in ("created", "applied") or isinstance(exc, ChangedMeanwhile):
                    self._rollback(state, pending, current, step, exc)
                else:
                    self._failed(state, pending, step, exc)
                raise
            meta = state.meta
        return state

    def _finish(self, state: RotationState, pending: Secret, previous: Secret | None) -> RotationState:
        meta = state.meta
        self.rotator.finish(pending, previous)
        self.checkpoint("finish:target")
        newest = newest_metadata(self.vault, self.name)
        if newest and newest[1].get("rotation.id") == state.rotation:
            to_version = newest[0]  # written before a crash: not again
        else:
            from_version = state.int_of("from_version")
            if newest and newest[0] != from_version:
                raise ChangedMeanwhile(f"{self.name} was changed by someone else during its rotation (now version {newest[0]}, "
                                 f"the rotation started from {from_version or 'none'}); the rotation is rolled back",
                                 hint="check who wrote it (vault history), then run rotate-secrets again")
            value = self.rotator.final_value(pending, previous)
            info = self.vault.put(self.name, value.reveal(), metadata={
                **self.rotator.version_metadata(pending),
                "rotation.stage": "current", "rotation.id": state.rotation, "rotation.kind": self.entry.kind,
                "rotation.previous_version": "" if from_version is None else str(from_version)})
            to_version = info.version
        self.checkpoint("finish:vault")
        retire_after = utcnow() + timedelta(seconds=self.entry.grace)
        return self._record(pending, meta, "finished", stage="current", to_version=to_version, retire_after=rfc3339(retire_after))

    def retire(self, state: RotationState) -> RotationState:
        pending = read_pending(self.vault, self.name, state)
        previous = self._version(state.int_of("from_version"))
        try:
            if previous is not None:
                self.rotator.retire(previous, pending)
            self.checkpoint("retire:target")
            self._retire_value(state)
            return self._record(pending, state.meta, "retired")
        except ZeroTrustError as exc:
            if not isinstance(exc, AuditError):
                self._failed(state, pending, "retired", exc)
            raise

    def _retire_value(self, state: RotationState) -> None:
        """A kind whose vault value changes at retire (keytab): one more version, written once."""
        newest = newest_metadata(self.vault, self.name)
        if newest is None or newest[1].get("rotation.id") != state.rotation or newest[1].get("rotation.retired"):
            return
        current = self._version(newest[0])
        value = self.rotator.retired_value(current)
        if value is None:
            return
        self.vault.put(self.name, value.reveal(), metadata={**newest[1], "rotation.retired": "1"})
        self.checkpoint("retire:vault")

    def _rollback(self, state: RotationState, pending: Secret, current: Secret | None, step: str, exc: ZeroTrustError) -> None:
        try:
            self.rotator.rollback(pending, current)
            self.checkpoint("rollback:target")
            meta = {**state.meta, "step": "rolled_back", "updated": rfc3339(), "result": f"failed:{type(exc).__name__}", "failed_step": _next(step)}
            write_state(self.vault, self.name, pending, meta)
            self._audit("rolled_back", True, meta, error=type(exc).__name__, failed_step=_next(step))
            self.steps.append("rolled_back")
        except ZeroTrustError as inner:
            # The rollback failed too: the step stays recorded (the next run resumes from it), with the failure.
            self._audit("rollback", False, state.meta, error=type(inner).__name__)
            self._failed(state, pending, step, exc)
            return
        self._audit(_next(step), False, state.meta, error=type(exc).__name__)

    def _failed(self, state: RotationState, pending: Secret, step: str, exc: ZeroTrustError) -> None:
        self._audit(_next(step) if step in IN_FLIGHT else step, False, state.meta, error=type(exc).__name__)
        try:  # the same step again, with the failure, for `secrets status` (the next run resumes from it)
            meta = {**state.meta, "updated": rfc3339(), "result": f"failed:{type(exc).__name__}", "failed_step": _next(step) if step in IN_FLIGHT else step}
            write_state(self.vault, self.name, pending, meta)
        except ZeroTrustError:
            pass


def _next(step: str) -> str:
    return {"created": "apply", "applied": "test", "tested": "finish"}.get(step, step)


def rotate_secrets(vault, config, *, names: list[str] | None = None, dry_run: bool = False, now: datetime | None = None,
                   authorize: Callable[[str, str], object] | None = None, checkpoint: Callable[[str], None] | None = None,
                   lock_wait: float = 0.0, notify: bool = True) -> dict:
    """Resume, retire and rotate what is due (or the named secrets). Nothing due is success.

    Per secret the result is ``done`` or ``failed`` (with the error class and
    the step); a failure does not stop the others. ``authorize(action,
    resource)`` is called for every secret acted on, before the lock."""
    entries, force = select(config, names)
    if names:
        entries = [e for e in entries if e.secret in force]
    now = now or utcnow()
    items = plan(vault, entries, force=force, now=now)
    acting = [i for i in items if i.action in ("rotate", "resume", "retire")]
    result = {"dry_run": dry_run, "plan": [i.to_dict() for i in items], "results": [], "nothing_due": not acting}
    if authorize is not None:  # also for --dry-run: the plan tells what is due
        for item in acting:
            authorize("rotate", item.secret)
    if dry_run or not acting:
        return result
    from zerotrust_admin.sessions.lock import distributed_lock

    outer = checkpoint or (lambda _step: None)
    try:
        lock_cm = distributed_lock(config, LOCK_NAME, ttl=LOCK_TTL, wait=lock_wait)
        lock = lock_cm.__enter__()
    except BusyError:
        _audit_plain(vault, "*", False, step="lock", error="BusyError")
        raise

    def check(step: str) -> None:
        lock.check()
        outer(step)

    try:
        by_name = {e.secret: e for e in entries}
        items = plan(vault, [by_name[i.secret] for i in acting], force=force, now=now)  # again, under the lock
        result["plan"] = [i.to_dict() for i in items]
        for item in items:
            if item.action not in ("rotate", "resume", "retire"):
                continue
            result["results"].append(_run_one(vault, config, by_name[item.secret], item, check, now, notify))
    finally:
        lock_cm.__exit__(None, None, None)
    result["nothing_due"] = False
    result["failed"] = sum(1 for r in result["results"] if r["result"] == "failed")
    return result


def _run_one(vault, config, entry: ManagedSecret, item: PlanItem, check, now, notify: bool) -> dict:
    runner = _Runner(vault, entry, check, now)
    outcome = {"secret": entry.secret, "kind": entry.kind, "action": item.action, "steps": runner.steps}
    try:
        state = read_state(vault, entry.secret)
        if item.action == "retire":
            state = runner.retire(state)
        else:
            if item.action == "resume" and state.step == CREATING:
                state, pending = runner.create(interrupted=state)
            elif item.action == "resume":
                pending = read_pending(vault, entry.secret, state)
            else:
                state, pending = runner.create()
            state = runner.advance(state, pending)
            if entry.grace == 0 or state.int_of("from_version") is None:  # no grace, or a first value: no previous to keep
                state = runner.retire(state)
        outcome.update(result="done", step=state.step, rotation=state.rotation,
                       version=state.int_of("to_version"), retire_after=state.meta.get("retire_after"))
    except ZeroTrustError as exc:
        if isinstance(exc, AuditError):
            raise
        outcome.update(result="failed", error=type(exc).__name__, message=exc.message)
        if notify:
            _notify_failure(vault, config, entry, exc, runner.steps)
    finally:
        runner.rotator.close()
    return outcome


def _audit_plain(vault, resource: str, success: bool, **details) -> None:
    if vault.audit is not None and vault.actor is not None:
        vault.audit.append(event=EVENT, action="rotate", resource=resource, success=success, actor=vault.actor, **details)


def _notify_failure(vault, config, entry: ManagedSecret, exc: ZeroTrustError, steps: list[str]) -> None:
    from zerotrust_admin.notify import notify_event

    try:
        notify_event(config, event="secret_rotation_failed", title=f"ZeroTrust: rotation of {entry.secret} failed",
                     summary=f"the {entry.kind} rotation of {entry.secret} failed ({type(exc).__name__}); "
                             "the current credential is unchanged unless the rotation finished",
                     details={"secret": entry.secret, "kind": entry.kind, "error": type(exc).__name__, "steps_done": ",".join(steps)},
                     severity="warning", audit=vault.audit, actor=vault.actor)
    except ZeroTrustError:
        pass  # a notification never undoes the work (notify.send already audits its own failures)


def status(vault, config, *, now: datetime | None = None, visible: Callable[[str], bool] | None = None) -> list[dict]:
    """One row per managed secret: kind, age, next due, stage, last result."""
    now = now or utcnow()
    rows = []
    for entry in load_managed(config):
        if visible is not None and not visible(entry.secret):
            continue
        state = read_state(vault, entry.secret)
        current = newest_metadata(vault, entry.secret)
        row = {"secret": entry.secret, "kind": entry.kind, "every_seconds": entry.every, "grace_seconds": entry.grace,
               "version": None, "age_seconds": None, "last_rotated": None, "next_due": None, "overdue": False,
               "stage": "current" if current else "missing", "step": state.step if state else "",
               "last_result": state.meta.get("result", "") if state else "", "retire_after": None}
        if current:
            version, meta, created = current
            created_at = parse_rfc3339(created)
            cls = rotator_class(entry.kind)
            due = cls.due_at(entry, created_at, meta, lambda: current_value(vault, entry.secret))
            row.update(version=version, age_seconds=int((now - created_at).total_seconds()), last_rotated=created,
                       next_due=rfc3339(due), overdue=now >= due)
            expires = cls.expires_at(meta, lambda: current_value(vault, entry.secret))
            if expires is not None:
                row.update(expires=rfc3339(expires), expired=now >= expires)
        elif _deleted(vault, entry.secret):
            row["stage"] = "deleted"
        else:
            row["overdue"] = True
        if state and (state.step in IN_FLIGHT or state.step == CREATING):
            row["stage"] = f"pending ({state.step})"
        elif state and state.step == "finished":
            row["stage"] = "current + previous (grace)"
            row["retire_after"] = state.meta.get("retire_after")
        if state and state.meta.get("failed_step"):
            row["last_result"] = f"{state.meta.get('result')} at {state.meta['failed_step']}"
        rows.append(row)
    return rows

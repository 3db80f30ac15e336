"""TOTP enrolment (seed in the vault), verification with replay refusal, and
``require_mfa`` (lockout + audit). See the package docstring."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from zerotrust_admin import fsutil
from zerotrust_admin.errors import DeniedError, NotFoundError
from zerotrust_admin.mfa import OTP_ENV, SEED_PREFIX, MfaPolicy, totp


def seed_name(principal: str) -> str:
    return SEED_PREFIX + principal.encode("utf-8").hex()


@dataclass
class Enrolment:
    principal: str
    uri: str
    secret_base32: str
    replaced: bool

    def to_dict(self) -> dict:
        return {"principal": self.principal, "otpauth_uri": self.uri, "secret_base32": self.secret_base32, "replaced": self.replaced}

    def __repr__(self) -> str:
        return f"Enrolment(principal={self.principal!r}, secret=<redacted>)"


class MfaStore:
    """TOTP seeds (in the vault) plus the replay guard (``mfa.db``)."""

    def __init__(self, vault, home: Path, policy: MfaPolicy | None = None, clock: Callable[[], float] = time.time):
        self.vault = vault
        self.state_path = Path(home) / "mfa.db"
        self.policy = policy or MfaPolicy()
        self.clock = clock

    def is_enrolled(self, principal: str) -> bool:
        try:
            info = self.vault.info(seed_name(principal))
        except NotFoundError:
            return False
        return info.deleted_at is None

    def enroll(self, principal: str, *, replace: bool = False) -> Enrolment:
        existed = self.is_enrolled(principal)
        if existed and not replace:
            raise DeniedError(f"{principal} is already enrolled for MFA", hint="re-enrol with: zerotrust-admin mfa enroll --force (the old authenticator stops working)")
        seed = totp.new_seed()
        self.vault.put(seed_name(principal), seed, metadata={"kind": "totp", "algorithm": "SHA1", "digits": "6", "period": "30"}, sensitive=True)
        self._reset_step(principal)
        return Enrolment(principal, totp.otpauth_uri(seed, principal, self.policy.issuer), totp.b32(seed), existed)

    def status(self, principal: str) -> dict:
        enrolled = self.is_enrolled(principal)
        out = {"principal": principal, "enrolled": enrolled, "enrolled_at": None, "last_used_step": self._last_step(principal)}
        if enrolled:
            out["enrolled_at"] = self.vault.info(seed_name(principal)).updated
        return out

    def verify(self, principal: str, code: str) -> int:
        """Return the accepted time step; raise DeniedError on a wrong or replayed code."""
        secret, _ = self.vault.get(seed_name(principal))
        with secret:
            step = totp.matching_step(secret.reveal(), code.strip(), self.clock(), skew_steps=self.policy.skew_steps)
        if step is None:
            raise WrongCode(f"wrong MFA code for {principal}", hint="use the current 6-digit code from your authenticator; check the clock if it keeps failing")
        if not self._consume_step(principal, step):
            raise WrongCode(f"this MFA code was already used by {principal}; codes are single-use", hint="wait for the next code (30 s)")
        return step

    # --- replay guard ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        return fsutil.connect_private_sqlite(self.state_path, what="MFA state database",
                                             schema="CREATE TABLE IF NOT EXISTS used_steps (principal TEXT PRIMARY KEY, last_step INTEGER NOT NULL);")

    def _consume_step(self, principal: str, step: int) -> bool:
        """Atomically accept ``step`` only if it is later than the last one used."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT last_step FROM used_steps WHERE principal = ?", (principal,)).fetchone()
            if row is not None and step <= row[0]:
                conn.execute("ROLLBACK")
                return False
            conn.execute("INSERT OR REPLACE INTO used_steps (principal, last_step) VALUES (?, ?)", (principal, step))
            conn.execute("COMMIT")
            return True
        finally:
            conn.close()

    def _last_step(self, principal: str) -> int | None:
        if not os.path.exists(self.state_path):
            return None
        conn = self._connect()
        try:
            row = conn.execute("SELECT last_step FROM used_steps WHERE principal = ?", (principal,)).fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    def _reset_step(self, principal: str) -> None:
        conn = self._connect()
        try:
            conn.execute("DELETE FROM used_steps WHERE principal = ?", (principal,))
        finally:
            conn.close()


class WrongCode(DeniedError):
    """A wrong, malformed, out-of-window or replayed TOTP code."""


CodeSource = Callable[[], "str | None"]
"""Returns the operator's code (from --otp-stdin, ZEROTRUST_OTP or a prompt), or None."""


def require_mfa(config, store: MfaStore, actor, audit, resource: str, code_source: CodeSource, *,
                purpose: str | None = None, missing_hint: str | None = None) -> None:
    """Demand a valid, unused TOTP code from ``actor`` before ``resource`` is read
    (or before ``purpose``, e.g. "re-enrolling MFA for alice@X", which the
    messages name instead of "reading RESOURCE").

    Lockout is checked first and every failure counts towards it; each outcome
    is audited (``event=mfa``).
    """
    purpose = purpose or f"reading {resource}"
    from zerotrust_admin.lockout import Lockout

    principal = actor.user
    lockout = Lockout.for_config(config, audit=audit, actor=actor)
    lockout.check(principal, "mfa")

    def audit_outcome(success: bool, **details) -> None:
        if audit is not None:
            audit.append(event="mfa", action="verify", resource=resource, success=success, actor=actor, **details)

    if not store.is_enrolled(principal):
        audit_outcome(False, reason="not_enrolled")
        raise DeniedError(f"{purpose} needs MFA, and {principal} is not enrolled", hint="enrol first with: zerotrust-admin mfa enroll")
    code = code_source()
    if not code:
        audit_outcome(False, reason="no_code")
        # A code source may say where its caller supplies codes (the Python API has no prompt or --otp-stdin).
        hint = missing_hint or getattr(code_source, "missing_hint", None) or f"type it at the prompt on a terminal, pipe it with --otp-stdin, or set {OTP_ENV}"
        raise DeniedError(f"{purpose} needs an MFA code", hint=hint)
    try:
        step = store.verify(principal, code)
    except WrongCode as exc:
        reason = "replayed" if "already used" in exc.message else "wrong_code"
        audit_outcome(False, reason=reason)
        lockout.record_failure(principal, "mfa")
        raise
    lockout.record_success(principal, "mfa")  # clears only the MFA counter (P4)
    audit_outcome(True, step=step)



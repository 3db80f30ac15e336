"""Who may (re-)enrol whose TOTP seed (threat-model row M1).

Replacing a principal's seed is as good as holding its second factor, so:

* A first enrolment of **yourself** needs nothing (someone has to start; see
  the trust-on-first-use limit in docs/security-model.md, section 3).
* **Re-enrolling yourself** (``--force`` over an existing seed) needs a valid,
  unused code of the current seed (lockout and replay rules as for any code),
  or a configured access rule that allows you the ``mfa`` action on
  ``mfa/<you>``. With no access policies configured, only the code will do:
  the "no policies: everything is allowed" default never counts here.
* Enrolling or resetting **someone else** (``--principal P``) always needs a
  configured rule that allows the ``mfa`` action on ``mfa/P`` (with no
  policies at all, nobody may).

Every attempt writes one ``event=mfa, action=enroll`` record (success or
failure with its reason); a policy refusal also writes ``access_denied`` and a
code check its ``action=verify`` record, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from zerotrust_admin.errors import DeniedError, UsageError

ACTION = "mfa"
MAX_PRINCIPAL = 256


def resource(principal: str) -> str:
    """The policy resource for a principal's enrolment: ``mfa/<principal>``."""
    return f"mfa/{principal}"


def check_principal(principal: str) -> str:
    """A principal named with ``--principal``: the same rule as every claimed
    identity (``identity.check_principal``: printable, never echoed when not),
    and at most 256 characters."""
    from zerotrust_admin.identity import check_principal as check

    if not isinstance(principal, str) or not principal.strip() or len(principal) > MAX_PRINCIPAL:
        raise UsageError("--principal must be a principal name such as alice@EXAMPLE.COM (1-256 characters)")
    return check(principal, "--principal")


@dataclass
class Plan:
    """What ``mfa enroll`` would do and what it needs (for ``--dry-run``)."""

    principal: str
    self_enrolment: bool
    already_enrolled: bool
    would_replace: bool
    needs: str  # nothing | code | policy | refused

    def to_dict(self) -> dict:
        return {"principal": self.principal, "self": self.self_enrolment, "already_enrolled": self.already_enrolled,
                "would_replace": self.would_replace, "needs": self.needs, "dry_run": True}


def _policy_allows(config, actor, target: str) -> bool:
    """A configured rule allows ``mfa`` on ``mfa/<target>``: the no-policies
    default ("everything is allowed") never counts here."""
    from zerotrust_admin.access import explicitly_allowed

    return explicitly_allowed(config, actor.user, ACTION, resource(target), actor.source_ip)


def plan(config, store, actor, target: str | None, *, replace: bool) -> Plan:
    """The decision without acting, consuming a code or writing audit records."""
    target = check_principal(target) if target is not None else actor.user
    is_self = target == actor.user
    enrolled = store.is_enrolled(target)
    allowed = _policy_allows(config, actor, target)
    if not is_self:
        needs = "policy" if allowed else "refused"
    elif not enrolled:
        needs = "nothing"
    elif not replace:
        needs = "refused"  # already enrolled: --force is needed to replace
    else:
        needs = "policy" if allowed else "code"
    return Plan(target, is_self, enrolled, enrolled and replace, needs)


def enroll(config, store, actor, audit, target: str | None, *, replace: bool, code_source):
    """Authorize, then create or replace ``target``'s seed (default: the actor).

    Raises DeniedError (exit 4; nothing changed) when not allowed. Returns the
    ``Enrolment`` (its seed goes to whoever ran this: for someone else, an
    administrator hands it over out of band)."""
    target = check_principal(target) if target is not None else actor.user

    def record(success: bool, **details) -> None:
        if audit is not None:
            audit.append(event="mfa", action="enroll", resource=f"principal:{target}", success=success, actor=actor,
                         level=None if success else "warning", target=target, **details)

    try:
        via = _authorize(config, store, actor, audit, target, replace=replace, code_source=code_source)
    except DeniedError as exc:
        record(False, reason=getattr(exc, "reason", None) or "denied", error=type(exc).__name__)
        raise
    try:
        result = store.enroll(target, replace=replace)
    except Exception as exc:
        record(False, reason="error", via=via, error=type(exc).__name__)
        raise
    record(True, via=via, replaced=result.replaced)
    return result


def _authorize(config, store, actor, audit, target: str, *, replace: bool, code_source) -> str:
    """How the enrolment is allowed: "policy", "first" or "code"; else DeniedError."""
    from zerotrust_admin.access import authorize

    if target != actor.user:
        try:
            authorize(config, actor, ACTION, resource(target), audit, explicit=True, operation="mfa_enroll")
        except DeniedError as exc:
            raise _reason(exc, "not_allowed") from None
        return "policy"
    if not store.is_enrolled(target):
        return "first"
    if not replace:
        raise _reason(DeniedError(f"{target} is already enrolled for MFA",
                                  hint="re-enrol with: zerotrust-admin mfa enroll --force, giving a current code of the old authenticator"),
                      "already_enrolled")
    if _policy_allows(config, actor, target):
        return "policy"
    from zerotrust_admin.mfa import OTP_ENV
    from zerotrust_admin.mfa.store import require_mfa

    hint = (f"give a current code of the old authenticator ({OTP_ENV}, --otp-stdin or the prompt); lost the device? "
            f"an administrator allowed the mfa action on {resource(target)} resets it (docs/security-model.md, section 3)")
    try:
        require_mfa(config, store, actor, audit, f"principal:{target}", code_source,
                    purpose=f"re-enrolling MFA for {target}", missing_hint=hint)
    except DeniedError as exc:
        raise _reason(exc, _verify_reason(exc)) from None
    return "code"


def _verify_reason(exc: DeniedError) -> str:
    from zerotrust_admin.mfa.store import WrongCode

    if isinstance(exc, WrongCode):
        return "replayed" if "already used" in exc.message else "wrong_code"
    if "locked out" in exc.message:
        return "locked_out"
    return "no_code" if "needs an MFA code" in exc.message else "not_verified"


def _reason(exc: DeniedError, reason: str) -> DeniedError:
    exc.reason = reason
    return exc

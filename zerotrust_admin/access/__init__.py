"""Who may do what: access policies (``access.policies``) and the one function
every command calls, :func:`authorize`.

Honest limit (docs/security-model.md): on one host these policies are defence
in depth beside file permissions; a provider's own ACLs are the hard boundary.

This module stays cheap to import (it sits on the ``vault get`` fast path): the
policy parser and evaluator are loaded only when policies are configured.
"""

from __future__ import annotations

from zerotrust_admin.access.decision import Decision
from zerotrust_admin.errors import DeniedError

RESERVED_PREFIX = "_zerotrust/"
"""Names the tool keeps for itself (MFA seeds). Operators cannot read, write or
delete them through the normal commands, whatever the policies say."""

_LAZY = {"ACTIONS": "policy", "Rule": "policy", "load_policies": "policy", "evaluate": "engine"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"zerotrust_admin.access.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _configured(config) -> bool:
    if isinstance(config, dict):
        raw = (config.get("access") or {}).get("policies")
    elif isinstance(config, list):
        raw = config
    else:
        raw = config.get("access.policies")
    return raw is not None and raw != []


def decide(config, principal: str, action: str, resource: str, source_ip: str | None = None) -> Decision:
    if resource.startswith(RESERVED_PREFIX) and action in ("read", "write", "delete"):
        return Decision(False, None, f"{RESERVED_PREFIX}* is reserved for zerotrust-admin's own records")
    if not _configured(config):
        return Decision(True, None, "no access policies are configured (everything is allowed)")
    from zerotrust_admin.access.engine import evaluate
    from zerotrust_admin.access.policy import load_policies

    return evaluate(load_policies(config), principal, action, resource, source_ip)


def authorize(config, actor, action: str, resource: str, audit=None, *, explicit: bool = False, **details) -> Decision:
    """Allow or raise DeniedError (exit 4); a denial is audited first.

    ``actor`` is an ``audit.log.Actor`` (user, source_ip). The audit record of
    an allowed operation is written by the operation itself; this function only
    records refusals, so that every denial leaves a trace even when nothing else
    runs. ``details`` go into that record (e.g. a bulk operation's counts; never
    a value).

    ``explicit``: the single-host default (no policies configured: everything
    allowed) does not count, only a configured rule that allows it; for what
    must never be open by default, such as enrolling someone else's MFA
    (threat-model row M1).
    """
    decision = decide(config, actor.user, action, resource, actor.source_ip)
    if explicit and decision.allowed and decision.rule_index is None:
        decision = Decision(False, None, "no access rule allows it (this needs an explicit rule, even with no access policies configured)")
    return _enforce(decision, actor, action, resource, audit, details)


def explicitly_allowed(config, principal: str, action: str, resource: str, source_ip: str | None = None) -> bool:
    """Allowed by a configured rule, not by the no-policies default (not audited)."""
    decision = decide(config, principal, action, resource, source_ip)
    return decision.allowed and decision.rule_index is not None


def _enforce(decision: Decision, actor, action: str, resource: str, audit, details: dict) -> Decision:
    if decision.allowed:
        return decision
    if audit is not None:
        audit.append(event="access_denied", action=action, resource=resource, success=False, actor=actor,
                     level="warning", rule=decision.rule_index, reason=decision.reason, **details)
    raise DeniedError(
        f"access denied: {actor.user} may not {action} {resource} ({_short(decision)})",
        hint=f"see why with: zerotrust-admin access check --principal {actor.user} --action {action} {resource}",
    )


def _short(decision: Decision) -> str:
    if decision.rule_index is not None:
        return f"deny rule {decision.rule_index}"
    return decision.reason.split(" (")[0]


def explain(config, principal: str, action: str, resource: str, source_ip: str | None = None) -> dict:
    """The decision plus the rule that made it, for ``access check``."""
    from zerotrust_admin.access.policy import ACTIONS, load_policies
    from zerotrust_admin.errors import UsageError

    action = action.lower()
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}", hint=f"one of: {', '.join(ACTIONS)}")
    rules = load_policies(config)
    decision = decide(config, principal, action, resource, source_ip)
    rule = rules[decision.rule_index].to_dict() if decision.rule_index is not None else None
    return {"principal": principal, "action": action, "resource": resource, "source_ip": source_ip,
            **decision.to_dict(), "rule": rule, "rules_configured": len(rules)}


__all__ = ["ACTIONS", "Decision", "RESERVED_PREFIX", "Rule", "authorize", "decide", "explicitly_allowed", "evaluate", "explain", "load_policies"]

"""Policy evaluation: a pure function of (rules, principal, action, resource, IP).

* No rules configured: everything is allowed (the single-host default; file
  permissions are the boundary then).
* Any rule configured: default deny.
* The first matching ``deny`` wins over every ``allow``; otherwise the first
  matching ``allow`` decides.
"""

from __future__ import annotations

import ipaddress

from zerotrust_admin.access.decision import Decision
from zerotrust_admin.access.policy import IMPLIED, Rule


def _ip(source_ip: str | None):
    if not source_ip:
        return None
    try:
        return ipaddress.ip_address(source_ip.split("%")[0])
    except ValueError:
        return None


def _matches(rule: Rule, principal: str, action: str, resource: str, ip) -> bool:
    if "*" not in rule.actions and action not in rule.actions and not any(a in rule.actions for a in IMPLIED.get(action, ())):
        return False
    if not rule.match_resource(resource) or not rule.match_principal(principal):
        return False
    if rule.networks:
        if ip is None:
            # An unknown source address never satisfies an allow, and always
            # satisfies a deny: fail closed either way.
            return rule.effect == "deny"
        return any(ip.version == net.version and ip in net for net in rule.networks)
    return True


def evaluate(policies: list[Rule], principal: str, action: str, resource: str, source_ip: str | None = None) -> Decision:
    if not policies:
        return Decision(True, None, "no access policies are configured (everything is allowed)")
    ip = _ip(source_ip)
    first_allow: Rule | None = None
    for rule in policies:
        if not _matches(rule, principal, action, resource, ip):
            continue
        if rule.effect == "deny":
            return Decision(False, rule.index, f"denied by {rule.describe()}")
        if first_allow is None:
            first_allow = rule
    if first_allow is not None:
        return Decision(True, first_allow.index, f"allowed by {first_allow.describe()}")
    return Decision(False, None, "no rule matched (default deny once any policy is configured)")

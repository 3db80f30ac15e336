"""The access-policy model and its loader (config key ``access.policies``).

A rule::

    {principals: ["alice@EXAMPLE.COM", "*@OPS.EXAMPLE.COM"],   # fnmatch globs
     secrets: ["app/*"],                                       # resource globs
     actions: [read, write],                                   # or ["*"]
     effect: allow | deny,
     source_cidrs: ["10.0.0.0/8"]}                             # optional

Every malformed rule is refused at load with a ConfigError (exit 2) that names
its index, so a typo can never silently widen or narrow access.
"""

from __future__ import annotations

import ipaddress
import re
from fnmatch import translate

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.structs import field, struct

ACTIONS = ("read", "write", "delete", "rotate", "revoke", "report", "list", "mfa", "backup", "restore", "create", "notify")
EFFECTS = ("allow", "deny")
RULE_KEYS = {"principals", "secrets", "resources", "actions", "effect", "source_cidrs", "description", "name"}

# Actions another action implies: whoever may read a secret may see its name.
IMPLIED = {"list": ("read",)}


@struct(frozen=True)
class Rule:
    index: int
    effect: str
    principals: tuple[str, ...]
    resources: tuple[str, ...]
    actions: tuple[str, ...]
    networks: tuple = field(default=())
    description: str = ""
    # fnmatch globs compiled once at load: evaluation is one regex match per field.
    match_principal: object = field(default=None, compare=False, repr=False)
    match_resource: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "match_principal", _globs(self.principals))
        object.__setattr__(self, "match_resource", _globs(self.resources))

    def describe(self) -> str:
        where = f" from {', '.join(map(str, self.networks))}" if self.networks else ""
        label = f" ({self.description})" if self.description else ""
        return (f"rule {self.index}{label}: {self.effect} {', '.join(self.principals)} "
                f"{', '.join(self.actions)} on {', '.join(self.resources)}{where}")

    def to_dict(self) -> dict:
        return {
            "index": self.index, "effect": self.effect, "principals": list(self.principals),
            "secrets": list(self.resources), "actions": list(self.actions),
            "source_cidrs": [str(n) for n in self.networks], "description": self.description,
        }


def _globs(patterns: tuple[str, ...]):
    """A matcher for a list of fnmatch globs, case-sensitive, ``*`` also crosses
    ``/``. The common shapes (exact, ``prefix*``, ``*suffix``, ``*``) avoid
    regular expressions, so loading and evaluating 100 rules stays cheap."""
    exact, prefixes, suffixes, regexes = set(), [], [], []
    for p in patterns:
        special = [c for c in p if c in "*?["]
        if not special:
            exact.add(p)
        elif p == "*":
            return lambda value: True
        elif special == ["*"] and p.endswith("*"):
            prefixes.append(p[:-1])
        elif special == ["*"] and p.startswith("*"):
            suffixes.append(p[1:])
        else:
            regexes.append(f"(?:{translate(p)})")
    prefixes_t, suffixes_t = tuple(prefixes), tuple(suffixes)
    regex = re.compile("|".join(regexes)).match if regexes else None

    def match(value: str) -> bool:
        return (value in exact or (bool(prefixes_t) and value.startswith(prefixes_t))
                or (bool(suffixes_t) and value.endswith(suffixes_t)) or (regex is not None and regex(value) is not None))

    return match


def _strings(value, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty list of strings", hint=f'e.g. {key}: ["*"]')
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: {key} holds {item!r}, which is not a non-empty string")
        out.append(item.strip())
    return tuple(out)


def parse_rule(index: int, raw) -> Rule:
    where = f"access.policies[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, not {type(raw).__name__}", hint="each rule is {principals: [...], secrets: [...], actions: [...], effect: allow|deny}")
    unknown = sorted(set(map(str, raw)) - RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}", hint=f"a rule has: {', '.join(sorted(RULE_KEYS - {'resources', 'name'}))}")
    effect = raw.get("effect")
    if effect not in EFFECTS:
        raise ConfigError(f"{where}: effect must be 'allow' or 'deny', not {effect!r}", hint="every rule states its effect explicitly")
    if "principals" not in raw:
        raise ConfigError(f"{where}: principals is missing", hint='use ["*"] to match everyone')
    principals = _strings(raw["principals"], where, "principals")
    if "secrets" in raw and "resources" in raw:
        raise ConfigError(f"{where}: give secrets or resources, not both")
    resource_key = "resources" if "resources" in raw else "secrets"
    if resource_key not in raw:
        raise ConfigError(f"{where}: secrets is missing", hint='use ["*"] to match every secret')
    resources = _strings(raw[resource_key], where, resource_key)
    if "actions" not in raw:
        raise ConfigError(f"{where}: actions is missing", hint=f"some of: {', '.join(ACTIONS)}, or \"*\"")
    actions = tuple(a.lower() for a in _strings(raw["actions"], where, "actions"))
    for action in actions:
        if action != "*" and action not in ACTIONS:
            raise ConfigError(f"{where}: unknown action {action!r}", hint=f"one of: {', '.join(ACTIONS)}, or \"*\"")
    networks = ()
    if raw.get("source_cidrs") is not None:
        nets = []
        for cidr in _strings(raw["source_cidrs"], where, "source_cidrs"):
            try:
                nets.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ConfigError(f"{where}: {cidr!r} is not an IP network", hint="write CIDRs like 10.0.0.0/8 or 2001:db8::/32") from None
        networks = tuple(nets)
    description = raw.get("description") or raw.get("name") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be a string")
    return Rule(index, effect, principals, resources, actions, networks, description)


def load_policies(source) -> list[Rule]:
    """Rules from a Config, a config dict, or the list itself."""
    if hasattr(source, "get") and not isinstance(source, (list, dict)):
        raw = source.get("access.policies")
    elif isinstance(source, dict):
        raw = (source.get("access") or {}).get("policies")
    else:
        raw = source
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"access.policies must be a list of rules, not {type(raw).__name__}")
    return [parse_rule(i, rule) for i, rule in enumerate(raw)]

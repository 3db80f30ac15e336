"""Access policies: loading (malformed rule -> exit 2 naming its index),
evaluation (default deny, first matching deny wins, globs, CIDRs), the one
`authorize` function (denial -> DeniedError + audit record), `access check`,
and enforcement on real commands."""

from __future__ import annotations

import json

import pytest

from zerotrust_admin.access import authorize, decide, evaluate, load_policies
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.errors import ConfigError, DeniedError, ExitCode

POLICIES = [
    {"principals": ["mallory@EXAMPLE.COM"], "secrets": ["*"], "actions": ["*"], "effect": "deny"},
    {"principals": ["alice@EXAMPLE.COM", "*@OPS.EXAMPLE.COM"], "secrets": ["app/*"], "actions": ["read", "write"], "effect": "allow", "source_cidrs": ["10.0.0.0/8", "2001:db8::/32"]},
    {"principals": ["*"], "secrets": ["app/prod/*"], "actions": ["read"], "effect": "deny", "source_cidrs": ["10.66.0.0/16"]},
    {"principals": ["bob@EXAMPLE.COM"], "secrets": ["app/readme"], "actions": ["read"], "effect": "allow"},
    {"principals": ["cron/*@EXAMPLE.COM"], "resources": ["keys/*"], "actions": ["rotate"], "effect": "allow"},
]


@pytest.fixture
def rules():
    return load_policies(POLICIES)


@pytest.mark.parametrize("principal,action,resource,ip,allowed,index", [
    ("alice@EXAMPLE.COM", "read", "app/db", "10.1.2.3", True, 1),
    ("alice@EXAMPLE.COM", "write", "app/db/password", "10.1.2.3", True, 1),  # * crosses '/'
    ("alice@EXAMPLE.COM", "delete", "app/db", "10.1.2.3", False, None),      # action not granted
    ("alice@EXAMPLE.COM", "read", "app/db", "192.168.1.1", False, None),     # outside the CIDRs
    ("alice@EXAMPLE.COM", "read", "app/db", "2001:db8::7", True, 1),         # IPv6 CIDR
    ("alice@EXAMPLE.COM", "read", "app/db", "not-an-ip", False, None),       # unknown IP never satisfies an allow
    ("carol@OPS.EXAMPLE.COM", "read", "app/x", "10.0.0.1", True, 1),         # principal glob
    ("carol@ops.example.com", "read", "app/x", "10.0.0.1", False, None),     # globs are case-sensitive
    ("alice@EXAMPLE.COM", "read", "app/prod/db", "10.66.1.1", False, 2),     # a later deny beats an earlier allow
    ("alice@EXAMPLE.COM", "read", "app/prod/db", "10.1.1.1", True, 1),
    ("mallory@EXAMPLE.COM", "read", "app/readme", "10.1.1.1", False, 0),
    ("bob@EXAMPLE.COM", "read", "app/readme", None, True, 3),
    ("bob@EXAMPLE.COM", "list", "app/readme", None, True, 3),                # read implies list
    ("bob@EXAMPLE.COM", "read", "app/other", None, False, None),             # default deny
    ("cron/rotator@EXAMPLE.COM", "rotate", "keys/master", None, True, 4),
    ("cron/rotator@EXAMPLE.COM", "revoke", "keys/master", None, False, None),
])
def test_evaluate(rules, principal, action, resource, ip, allowed, index):
    decision = evaluate(rules, principal, action, resource, ip)
    assert (decision.allowed, decision.rule_index) == (allowed, index), decision.reason


def test_deny_rule_with_cidr_matches_an_unknown_ip(rules):
    assert evaluate(rules, "alice@EXAMPLE.COM", "read", "app/prod/db", "garbage").allowed is False


def test_no_policies_allows_everything():
    decision = evaluate([], "anyone@X", "delete", "any/thing", None)
    assert decision.allowed and decision.rule_index is None


@pytest.mark.parametrize("bad,index,fragment", [
    ([{"principals": ["*"], "secrets": ["*"], "actions": ["raed"], "effect": "allow"}], 0, "unknown action 'raed'"),
    ([POLICIES[3], {"principals": ["*"], "secrets": ["*"], "actions": ["read"], "effect": "permit"}], 1, "effect"),
    ([POLICIES[3], POLICIES[3], {"principals": ["*"], "secrets": ["*"], "actions": ["read"], "effect": "allow", "source_cidrs": ["10.0.0.0/33"]}], 2, "not an IP network"),
    ([{"secrets": ["*"], "actions": ["read"], "effect": "allow"}], 0, "principals is missing"),
    ([{"principals": [], "secrets": ["*"], "actions": ["read"], "effect": "allow"}], 0, "non-empty"),
    ([{"principals": ["*"], "secrets": ["*"], "actions": ["read"], "effect": "allow", "sources": ["x"]}], 0, "unknown key 'sources'"),
    (["allow everything"], 0, "must be a mapping"),
])
def test_malformed_rule_names_its_index(bad, index, fragment):
    with pytest.raises(ConfigError) as err:
        load_policies(bad)
    assert f"access.policies[{index}]" in err.value.message and fragment in err.value.message
    assert err.value.exit_code == ExitCode.USAGE


def test_reserved_names_are_refused_whatever_the_policy():
    assert not decide({"access": {"policies": []}}, "alice@X", "read", "_zerotrust/mfa/00").allowed


def test_authorize_raises_and_audits(tmp_path):
    audit = AuditLog(tmp_path / "audit.log")
    config = {"access": {"policies": POLICIES}}
    actor = Actor(user="bob@EXAMPLE.COM", source_ip="10.9.9.9", host="h")
    assert authorize(config, actor, "read", "app/readme", audit).allowed
    with pytest.raises(DeniedError) as err:
        authorize(config, actor, "write", "app/readme", audit)
    assert err.value.exit_code == 4 and "bob@EXAMPLE.COM may not write app/readme" in err.value.message
    records = list(audit.records())
    assert len(records) == 1  # allowed decisions are audited by the operation itself
    assert records[0]["event"] == "access_denied" and records[0]["success"] is False
    assert records[0]["user"] == "bob@EXAMPLE.COM" and records[0]["resource"] == "app/readme"


def test_a_bulk_refusal_is_one_audit_record_with_its_counts(tmp_path):
    """AccessGuard.before_migrate decides every name first and audits the refusal once, through authorize."""
    from types import SimpleNamespace

    from zerotrust_admin.access.guard import AccessGuard

    audit = AuditLog(tmp_path / "audit.log")
    actor = Actor(user="bob@EXAMPLE.COM", source_ip="10.9.9.9", host="h")
    policies = [{"principals": ["bob@EXAMPLE.COM"], "secrets": ["app/*"], "actions": ["read"], "effect": "allow"},
                {"principals": ["bob@EXAMPLE.COM"], "secrets": ["app/w*"], "actions": ["write"], "effect": "allow"}]
    guard = AccessGuard({"access": {"policies": policies}}, actor, audit)
    items = [SimpleNamespace(name=n, sensitive=False) for n in ("app/w1", "app/x", "app/y", "ops/hidden")]
    with pytest.raises(DeniedError) as err:
        guard.before_migrate(items)
    assert "bob@EXAMPLE.COM may not write app/x" in err.value.message and "2 of 3 secrets denied" in err.value.message
    (record,) = list(audit.records())
    assert (record["event"], record["action"], record["resource"]) == ("access_denied", "write", "app/x")
    assert (record["details"]["operation"], record["details"]["denied"], record["details"]["checked"]) == ("migrate", 2, 3)
    allowed, hidden = guard.before_migrate(items[:1] + items[3:])
    assert [i.name for i in allowed] == ["app/w1"] and hidden == 1  # ops/hidden: not listable, left out unnamed


# --- CLI -------------------------------------------------------------------------
@pytest.fixture
def policy_env(tmp_path):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"access": {"policies": POLICIES}}))
    path.chmod(0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def test_access_check_explains(cli, policy_env):
    ok = cli("access", "check", "--principal", "alice@EXAMPLE.COM", "--action", "read", "--source-ip", "10.1.2.3", "app/db", "--json", env=policy_env)
    assert ok.code == 0, ok.err
    result = json.loads(ok.out)
    assert result["allowed"] and result["rule_index"] == 1 and result["rule"]["effect"] == "allow"
    denied = cli("access", "check", "--principal", "alice@EXAMPLE.COM", "--action", "read", "--source-ip", "10.66.0.9", "app/prod/db", env=policy_env)
    assert denied.code == 4
    assert denied.text.startswith("DENY") and "rule 2" in denied.text
    default = cli("access", "check", "-p", "zed@X", "-a", "write", "app/db", env=policy_env)
    assert default.code == 4 and "default deny" in default.text
    assert cli("access", "check", "-a", "steal", "app/db", env=policy_env).code == 2


def test_malformed_policy_exits_2_at_load(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("access:\n  policies:\n    - {principals: ['*'], secrets: ['*'], actions: [read], effect: allow}\n    - {principals: ['*'], secrets: ['*'], actions: [read]}\n")
    path.chmod(0o600)
    result = cli("access", "check", "-a", "read", "x", env={"ZEROTRUST_CONFIG": str(path)})
    assert result.code == 2 and "access.policies[1]" in result.err


def test_policies_are_enforced_on_vault_commands(cli, initialized, tmp_path):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"access": {"policies": [
        {"principals": ["alice@EXAMPLE.COM"], "secrets": ["app/*"], "actions": ["read", "write"], "effect": "allow"},
        {"principals": ["alice@EXAMPLE.COM"], "secrets": ["app/locked"], "actions": ["*"], "effect": "deny"},
    ]}}))
    path.chmod(0o600)
    env = {"ZEROTRUST_CONFIG": str(path)}
    assert cli("vault", "put", "app/db", input=b"v1", env=env).code == 0
    assert cli("vault", "get", "app/db", env=env).out == b"v1"
    denied_write = cli("vault", "put", "app/locked", input=b"nope", env=env)
    assert denied_write.code == 4 and "access denied" in denied_write.err
    assert cli("vault", "put", "other/x", input=b"v", env=env).code == 4
    assert cli("vault", "delete", "app/db", "--yes", env=env).code == 4  # delete not granted
    other = cli("vault", "get", "app/db", env={**env, "ZEROTRUST_PRINCIPAL": "eve@EXAMPLE.COM"})
    assert other.code == 4 and other.out == b""
    records = [json.loads(line) for line in (initialized / "audit.log").read_text().splitlines()]
    denials = {(r["user"], r["action"], r["resource"]) for r in records if r["event"] == "access_denied"}
    assert ("alice@EXAMPLE.COM", "write", "app/locked") in denials
    assert ("eve@EXAMPLE.COM", "read", "app/db") in denials


def test_list_and_export_follow_the_policies(cli, initialized, tmp_path):
    import yaml

    for name in ("app/a", "app/b", "ops/c"):
        assert cli("vault", "put", name, input=b"v-" + name.encode()).code == 0
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"access": {"policies": [
        {"principals": ["alice@EXAMPLE.COM"], "secrets": ["app/*"], "actions": ["read"], "effect": "allow"},
    ]}}))
    path.chmod(0o600)
    env = {"ZEROTRUST_CONFIG": str(path)}
    listed = json.loads(cli("vault", "list", "--json", env=env).out)
    assert [i["name"] for i in listed] == ["app/a", "app/b"]  # ops/c is hidden, not an error
    exported = cli("vault", "export", "--yes", "--prefix", "app/", env=env)
    assert exported.code == 0 and set(json.loads(exported.out)["secrets"]) == {"app/a", "app/b"}
    everything = cli("vault", "export", "--yes", env=env)  # ops/c is not visible to alice: not exported
    assert everything.code == 0 and set(json.loads(everything.out)["secrets"]) == {"app/a", "app/b"}
    assert set(json.loads(cli("vault", "export", "--yes").out)["secrets"]) == {"app/a", "app/b", "ops/c"}  # no policies
    assert cli("vault", "history", "ops/c", env=env).code == 4


def test_config_check_reports_a_malformed_policy(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("access:\n  policies:\n    - {principals: ['*'], secrets: ['*'], actions: [read], effect: maybe}\n"
                    "security:\n  mfa: {skew_steps: 9}\n")
    path.chmod(0o600)
    result = cli("config", "check", "--json", env={"ZEROTRUST_CONFIG": str(path)})
    assert result.code == 1
    problems = {p["key"]: p["message"] for p in json.loads(result.out)["problems"]}
    assert "access.policies[0]" in problems["access.policies"] and "security.mfa" in problems


def test_explicit_authorization_ignores_the_no_policies_default(tmp_path):
    """authorize(explicit=True) (mfa enroll for someone else): only a configured rule allows."""
    audit = AuditLog(tmp_path / "audit.log")
    actor = Actor(user="admin@EXAMPLE.COM", source_ip="10.9.9.9", host="h")
    assert authorize({}, actor, "mfa", "mfa/bob@EXAMPLE.COM", audit).allowed  # the default, for every other caller
    with pytest.raises(DeniedError) as err:
        authorize({}, actor, "mfa", "mfa/bob@EXAMPLE.COM", audit, explicit=True)
    assert "no access rule allows it" in err.value.message
    (record,) = list(audit.records())
    assert (record["event"], record["action"], record["resource"]) == ("access_denied", "mfa", "mfa/bob@EXAMPLE.COM")
    rule = {"principals": ["admin@EXAMPLE.COM"], "resources": ["mfa/*"], "actions": ["mfa"], "effect": "allow"}
    assert authorize({"access": {"policies": [rule]}}, actor, "mfa", "mfa/bob@EXAMPLE.COM", audit, explicit=True).rule_index == 0

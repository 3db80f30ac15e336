"""Threat-model rows M1, P2, P3 (docs/threat-model.md): authorization gaps.

Attacker (a) runs the real CLI as an operator and claims a principal with
``ZEROTRUST_PRINCIPAL``; policies come from a config file; TOTP codes are
computed here from the seed the test enrolled (zerotrust_admin/mfa/totp.py).
Each test checks the exit code, that nothing changed, and the audit trail.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import yaml

from tests.servers import http_capture, openbao  # noqa: F401  (fixtures)
from zerotrust_admin.mfa import totp

ALICE = "alice@EXAMPLE.COM"
ADMIN = "admin@EXAMPLE.COM"
MALLORY = "mallory@EXAMPLE.COM"
BOB = "bob@EXAMPLE.COM"
EVERYONE_ALL = {"principals": ["*"], "secrets": ["*"], "actions": ["*"], "effect": "allow"}


# --- helpers -----------------------------------------------------------------------
def write_config(tmp_path: Path, data: dict, name: str = "policy.yaml") -> dict:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def policies(*rules) -> dict:
    return {"access": {"policies": list(rules)}}


def records(home: Path) -> list[dict]:
    out = []
    for line in (home / "audit.log").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "event" in record:
            out.append(record)
    return out


def seed_of(result) -> bytes:
    assert result.code == 0, result.err
    secret = json.loads(result.out)["secret_base32"]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def fresh_code(seed: bytes) -> str:
    if time.time() % 30 > 27:  # never a code that straddles a step boundary
        time.sleep(30 - time.time() % 30 + 0.2)
    return totp.totp(seed, time.time())


def enrol_records(home: Path, target: str) -> list[tuple[str, bool, str | None]]:
    return [(r["user"], r["success"], (r.get("details") or {}).get("reason") or (r.get("details") or {}).get("via"))
            for r in records(home) if r["event"] == "mfa" and r["action"] == "enroll" and r["resource"] == f"principal:{target}"]


# --- M1: MFA re-enrolment needs MFA -----------------------------------------------------
def test_m1_force_reenrol_without_a_code_is_refused_and_the_old_seed_still_works(cli, initialized):
    old = seed_of(cli("mfa", "enroll", "--json"))
    assert cli("vault", "put", "prod/db", "--sensitive", input=b"the-real-value").code == 0
    # The attack of issue 12 (finding 6): replace the seed with no code, then read the sensitive secret.
    attack = cli("mfa", "enroll", "--force", "--yes", "--json")
    assert attack.code == 4, attack.err
    assert attack.out == b"" and "needs an MFA code" in attack.err
    wrong = cli("mfa", "enroll", "--force", "--yes", "--json", env={"ZEROTRUST_OTP": "000000"})
    assert wrong.code == 4 and wrong.out == b""
    # Nothing changed: the old authenticator still opens the secret.
    ok = cli("vault", "get", "prod/db", env={"ZEROTRUST_OTP": fresh_code(old)})
    assert ok.code == 0 and ok.out == b"the-real-value", ok.err
    assert enrol_records(initialized, ALICE)[-2:] == [(ALICE, False, "no_code"), (ALICE, False, "wrong_code")]


def test_m1_force_reenrol_with_policies_but_no_mfa_action_still_needs_the_code(cli, initialized, tmp_path):
    env = write_config(tmp_path, policies({"principals": [ALICE], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"}))
    old = seed_of(cli("mfa", "enroll", "--json", env=env))
    refused = cli("mfa", "enroll", "--force", "--yes", env=env)
    assert refused.code == 4 and "needs an MFA code" in refused.err
    assert cli("mfa", "verify", "--otp-stdin", input=fresh_code(old).encode() + b"\n", env=env).code == 0


def test_m1_force_reenrol_with_a_current_code_replaces_the_seed(cli, initialized):
    old = seed_of(cli("mfa", "enroll", "--json"))
    new = seed_of(cli("mfa", "enroll", "--force", "--yes", "--json", env={"ZEROTRUST_OTP": fresh_code(old)}))
    assert new != old
    gone = cli("mfa", "verify", "--otp-stdin", input=fresh_code(old).encode() + b"\n")
    assert gone.code == 4 and "wrong MFA code" in gone.err  # the old seed is gone
    assert cli("mfa", "verify", "--otp-stdin", input=totp.totp(new, time.time()).encode() + b"\n").code == 0
    assert enrol_records(initialized, ALICE) == [(ALICE, True, "first"), (ALICE, True, "code")]
    verify = [r for r in records(initialized) if r["event"] == "mfa" and r["action"] == "verify" and r["resource"] == f"principal:{ALICE}"]
    assert verify and verify[0]["success"] is True  # the old code was checked (and consumed) before the seed was replaced


def test_m1_admin_with_the_mfa_action_resets_another_principal(cli, initialized, tmp_path):
    env = write_config(tmp_path, policies(
        {"principals": [ADMIN], "resources": ["mfa/*"], "actions": ["mfa"], "effect": "allow"},
        {"principals": [ALICE], "secrets": ["prod/*"], "actions": ["read", "write"], "effect": "allow"},
    ))
    seed_of(cli("mfa", "enroll", "--json", env=env))  # alice's device, then lost
    assert cli("vault", "put", "prod/db", "--sensitive", input=b"v", env=env).code == 0
    reset = cli("mfa", "enroll", "--principal", ALICE, "--force", "--yes", "--json", env={**env, "ZEROTRUST_PRINCIPAL": ADMIN})
    new = seed_of(reset)
    assert json.loads(reset.out)["principal"] == ALICE and json.loads(reset.out)["replaced"] is True
    # Alice reads with the seed the administrator handed her; the administrator is not enrolled for it.
    ok = cli("vault", "get", "prod/db", env={**env, "ZEROTRUST_OTP": fresh_code(new)})
    assert ok.code == 0 and ok.out == b"v", ok.err
    assert json.loads(cli("mfa", "status", "--json", env={**env, "ZEROTRUST_PRINCIPAL": ADMIN}).out)["enrolled"] is False
    assert enrol_records(initialized, ALICE)[-1] == (ADMIN, True, "policy")


@pytest.mark.parametrize("configured", [False, True], ids=["no-policies", "policies"])
def test_m1_enrolling_someone_else_without_the_mfa_action_is_refused(cli, initialized, tmp_path, configured):
    env = write_config(tmp_path, policies(EVERYONE_ALL | {"actions": ["read", "write", "list", "rotate"]})) if configured else {}
    old = seed_of(cli("mfa", "enroll", "--json", env=env))
    as_mallory = {**env, "ZEROTRUST_PRINCIPAL": MALLORY}
    reset = cli("mfa", "enroll", "--principal", ALICE, "--force", "--yes", "--json", env=as_mallory)
    assert reset.code == 4 and reset.out == b"" and "access denied" in reset.err
    first = cli("mfa", "enroll", "--principal", BOB, "--json", env=as_mallory)  # a first enrolment of someone else too
    assert first.code == 4 and first.out == b""
    assert json.loads(cli("mfa", "status", "--json", env={**env, "ZEROTRUST_PRINCIPAL": BOB}).out)["enrolled"] is False
    assert cli("mfa", "verify", "--otp-stdin", input=fresh_code(old).encode() + b"\n", env=env).code == 0  # alice's seed unchanged
    denied = {(r["user"], r["action"], r["resource"]) for r in records(initialized) if r["event"] == "access_denied"}
    assert {(MALLORY, "mfa", f"mfa/{ALICE}"), (MALLORY, "mfa", f"mfa/{BOB}")} <= denied
    assert enrol_records(initialized, ALICE)[-1] == (MALLORY, False, "not_allowed")
    assert enrol_records(initialized, BOB) == [(MALLORY, False, "not_allowed")]


def test_m1_a_wildcard_rule_grants_the_mfa_action(cli, initialized, tmp_path):
    """``actions: ["*"]`` includes mfa (documented): such a principal is an MFA administrator."""
    env = write_config(tmp_path, policies({"principals": [ADMIN], "secrets": ["*"], "actions": ["*"], "effect": "allow"}))
    assert cli("access", "check", "-p", ADMIN, "-a", "mfa", f"mfa/{ALICE}", env=env).code == 0
    made = cli("mfa", "enroll", "--principal", ALICE, "--json", env={**env, "ZEROTRUST_PRINCIPAL": ADMIN})
    assert made.code == 0, made.err
    assert enrol_records(initialized, ALICE) == [(ADMIN, True, "policy")]


def test_m1_principal_with_control_characters_is_refused(cli, initialized, tmp_path):
    env = write_config(tmp_path, policies({"principals": [ADMIN], "resources": ["mfa/*"], "actions": ["mfa"], "effect": "allow"}))
    bad = cli("mfa", "enroll", "--principal", "eve\x1b[2J@X", "--json", env={**env, "ZEROTRUST_PRINCIPAL": ADMIN})
    assert bad.code == 2 and "\x1b" not in bad.err


# --- P2: commands outside policy ------------------------------------------------------
def deny_then_allow_all(principal: str, action: str, resource: str) -> dict:
    return policies({"principals": [principal], "resources": [resource], "actions": [action], "effect": "deny"}, EVERYONE_ALL)


def denials(home: Path, action: str) -> list[tuple[str, str]]:
    return [(r["user"], r["resource"]) for r in records(home) if r["event"] == "access_denied" and r["action"] == action]


def test_p2_keys_migrate_needs_rotate_on_keys_master(cli, initialized, tmp_path):
    env = write_config(tmp_path, deny_then_allow_all(MALLORY, "rotate", "keys/master"))
    key_before, vault_before = (initialized / "master.key").read_bytes(), (initialized / "vault.db").read_bytes()
    for extra in ((), ("--dry-run",)):
        refused = cli("keys", "migrate", "--to", "hsm", "--yes", *extra, env={**env, "ZEROTRUST_PRINCIPAL": MALLORY})
        assert refused.code == 4 and "access denied" in refused.err and "rotate keys/master" in refused.err
    assert (initialized / "master.key").read_bytes() == key_before and (initialized / "vault.db").read_bytes() == vault_before
    assert denials(initialized, "rotate") == [(MALLORY, "keys/master")] * 2
    # Someone the policy allows gets past the check (and fails later for want of an HSM block, not for access).
    allowed = cli("keys", "migrate", "--to", "hsm", "--yes", env=env)
    assert allowed.code != 4 and "access denied" not in allowed.err


def test_p2_sessions_create_needs_create_on_the_user(cli, initialized, tmp_path):
    env = write_config(tmp_path, deny_then_allow_all(MALLORY, "create", f"sessions/{BOB}"))
    refused = cli("sessions", "create", "--user", BOB, "--json", env={**env, "ZEROTRUST_PRINCIPAL": MALLORY})
    assert refused.code == 4 and refused.out == b"" and "access denied" in refused.err
    assert json.loads(cli("sessions", "list", "--json", env=env).out) == []
    assert denials(initialized, "create") == [(MALLORY, f"sessions/{BOB}")]
    assert not [r for r in records(initialized) if r["event"] == "session_create"]
    made = cli("sessions", "create", "--user", BOB, "--json", env=env)  # alice is allowed
    assert made.code == 0, made.err
    assert [s["user"] for s in json.loads(cli("sessions", "list", "--json", env=env).out)] == [BOB]


def test_p2_notify_test_needs_notify_on_the_channel(cli, initialized, tmp_path, http_capture):  # noqa: F811
    hook = http_capture()
    config = deny_then_allow_all(MALLORY, "notify", "notify/*")
    config["security"] = {"breach_notification": {"enabled": True, "retries": 0, "timeout_seconds": 2,
                                                  "channels": [{"slack": {"webhook_url": hook.url("/services/x")}}]}}
    env = write_config(tmp_path, config)
    as_mallory = {**env, "ZEROTRUST_PRINCIPAL": MALLORY}
    for extra in ((), ("--channel", "slack")):
        refused = cli("notify", "test", *extra, env=as_mallory)
        assert refused.code == 4 and "access denied" in refused.err
    assert hook.requests == []  # nothing was sent
    assert denials(initialized, "notify") == [(MALLORY, "notify/all"), (MALLORY, "notify/slack")]
    sent = cli("notify", "test", "--json", env=env)  # alice is allowed
    assert sent.code == 0, sent.err
    assert len(hook.requests) == 1


@pytest.mark.parametrize("action", ["mfa", "backup", "restore", "create", "notify"])
def test_p2_new_actions_are_valid_in_rules_and_access_check(cli, tmp_path, action):
    env = write_config(tmp_path, policies({"principals": [ADMIN], "resources": ["*"], "actions": [action], "effect": "allow"}))
    assert cli("access", "check", "-p", ADMIN, "-a", action, "x/y", env=env).code == 0
    assert cli("access", "check", "-p", ADMIN, "-a", "read", "x/y", env=env).code == 4  # the new action grants only itself


# --- P3: import comparison ----------------------------------------------------------
def import_file(tmp_path: Path, entries: dict, name: str = "guess.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return str(path)


def history(cli, name: str, env: dict | None = None) -> list[int]:
    result = cli("vault", "history", name, "--json", env=env)
    assert result.code == 0, result.err
    return [v["version"] for v in json.loads(result.out)]


@pytest.fixture
def p3_env(tmp_path):
    return write_config(tmp_path, policies(
        {"principals": [ALICE], "secrets": ["app/*"], "actions": ["read", "write"], "effect": "allow"},
        {"principals": [MALLORY], "secrets": ["app/*"], "actions": ["write"], "effect": "allow"},
    ))


def test_p3_write_only_import_of_the_current_value_is_written_not_unchanged(cli, initialized, tmp_path, p3_env):
    assert cli("vault", "put", "app/db", input=b"guess-me", env=p3_env).code == 0
    as_mallory = {**p3_env, "ZEROTRUST_PRINCIPAL": MALLORY}
    right = cli("vault", "import", import_file(tmp_path, {"app/db": "guess-me"}), "--json", env=as_mallory)
    assert right.code == 0, right.err
    wrong = cli("vault", "import", import_file(tmp_path, {"app/db": "wrong-guess"}, "wrong.json"), "--json", env=as_mallory)
    assert wrong.code == 0, wrong.err
    # The right and the wrong guess look the same: each is a new version, never "unchanged".
    assert json.loads(right.out) == json.loads(wrong.out) == {"created": 0, "updated": 1, "unchanged": 0}
    assert history(cli, "app/db", p3_env) == [1, 2, 3]
    assert cli("vault", "get", "app/db", env=p3_env).out == b"wrong-guess"
    imports = [r for r in records(initialized) if r["action"] == "import" and r["user"] == MALLORY]
    assert [r["success"] for r in imports] == [True, True]


def test_p3_a_reader_gets_unchanged(cli, initialized, tmp_path, p3_env):
    assert cli("vault", "put", "app/db", input=b"same", env=p3_env).code == 0
    result = cli("vault", "import", import_file(tmp_path, {"app/db": "same", "app/new": "n"}), "--json", env=p3_env)
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"created": 1, "updated": 0, "unchanged": 1}
    assert history(cli, "app/db", p3_env) == [1]


def test_p3_a_batch_with_one_unreadable_name_compares_nothing(cli, initialized, tmp_path):
    env = write_config(tmp_path, policies(
        {"principals": [ALICE], "secrets": ["app/*"], "actions": ["read", "write"], "effect": "allow"},
        {"principals": [ALICE], "secrets": ["drop/*"], "actions": ["write"], "effect": "allow"},
    ))
    assert cli("vault", "put", "app/db", input=b"same", env=env).code == 0
    assert cli("vault", "put", "drop/box", input=b"hidden", env=env).code == 0
    result = cli("vault", "import", import_file(tmp_path, {"app/db": "same", "drop/box": "hidden"}), "--json", env=env)
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"created": 0, "updated": 2, "unchanged": 0}  # decided per batch (documented)


def test_p3_a_sensitive_secret_is_compared_only_with_an_mfa_code(cli, initialized, tmp_path, p3_env):
    seed = seed_of(cli("mfa", "enroll", "--json", env=p3_env))
    assert cli("vault", "put", "app/root", "--sensitive", input=b"s3cret", env=p3_env).code == 0
    path = import_file(tmp_path, {"app/root": "s3cret"})
    no_code = cli("vault", "import", path, "--json", env=p3_env)
    assert no_code.code == 0, no_code.err
    assert json.loads(no_code.out) == {"created": 0, "updated": 1, "unchanged": 0}
    wrong = cli("vault", "import", path, "--json", env={**p3_env, "ZEROTRUST_OTP": "000000"})
    assert wrong.code == 4 and wrong.out == b""  # a code that is given must be right
    assert history(cli, "app/root", p3_env) == [1, 2]
    with_code = cli("vault", "import", path, "--json", env={**p3_env, "ZEROTRUST_OTP": fresh_code(seed)})
    assert with_code.code == 0, with_code.err
    assert json.loads(with_code.out) == {"created": 0, "updated": 0, "unchanged": 1}
    assert history(cli, "app/root", p3_env) == [1, 2]


def test_p3_external_provider_write_only_import_reads_nothing(cli, initialized, tmp_path, openbao):  # noqa: F811
    """The same rule for the providers' shared import (providers/base.py), against a real OpenBao:
    a write-only principal's import never reads the stored value."""
    import os

    secret_id = tmp_path / "bao-secret-id"
    secret_id.write_text(openbao.new_secret_id() + "\n")
    secret_id.chmod(0o600)
    config = policies(
        {"principals": [ALICE], "secrets": ["p3/*"], "actions": ["read", "write"], "effect": "allow"},
        {"principals": [MALLORY], "secrets": ["p3/*"], "actions": ["write"], "effect": "allow"},
    )
    config["secrets"] = {"provider": "hashicorp", "config": {"url": openbao.url, "mount_path": openbao.MOUNT, "role_id": openbao.role_id,
                                                            "secret_id_file": str(secret_id), "timeout": 5}}
    env = write_config(tmp_path, config)
    name = f"p3/{os.urandom(4).hex()}"
    assert cli("vault", "put", name, input=b"guess-me", env=env).code == 0
    path = import_file(tmp_path, {name: "guess-me"})
    blind = cli("vault", "import", path, "--json", env={**env, "ZEROTRUST_PRINCIPAL": MALLORY})
    assert blind.code == 0, blind.err
    assert json.loads(blind.out) == {"created": 0, "updated": 1, "unchanged": 0}
    reader = cli("vault", "import", path, "--json", env=env)
    assert reader.code == 0 and json.loads(reader.out) == {"created": 0, "updated": 0, "unchanged": 1}, reader.err
    assert history(cli, name, env) == [1, 2]
    imports = [(r["user"], (r.get("details") or {}).get("compared")) for r in records(initialized) if r["action"] == "import"]
    assert imports == [(MALLORY, False), (ALICE, True)]
    reads = [r for r in records(initialized) if r["action"] == "read" and r["resource"] == name]
    assert reads == []  # nothing was read on the importers' behalf through the audited path


# --- M2: the state files behind replay protection and lockout (a stated limit) -----------
def test_m2_replay_record_in_mfa_db_is_only_as_safe_as_the_file(cli, initialized):
    """Row M2 says what the MFA replay record and the lockout counters rest on: the
    file permissions of mfa.db / lockout.db, not a key. This pins both halves: a
    used code is refused, and an attacker who can write mfa.db can make it usable
    again within its window (why the row names the deployment that closes it)."""
    import sqlite3

    seed = seed_of(cli("mfa", "enroll", "--json"))
    assert cli("vault", "put", "prod/db", "--sensitive", input=b"the-real-value").code == 0
    code = fresh_code(seed)
    assert cli("vault", "get", "prod/db", env={"ZEROTRUST_OTP": code}).code == 0
    replay = cli("vault", "get", "prod/db", env={"ZEROTRUST_OTP": code})
    assert replay.code == 4 and replay.out == b""  # a used code is refused
    with sqlite3.connect(initialized / "mfa.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "used_steps" in tables, tables
        conn.execute("DELETE FROM used_steps")
    again = cli("vault", "get", "prod/db", env={"ZEROTRUST_OTP": code})
    assert again.code == 0 and again.out == b"the-real-value"  # out of scope, as M2 says

"""``vault migrate``: every secret and every version copied between providers,
safe to re-run (content hashes), dry run, deleted secrets skipped, counts
reported, a provider failing mid-way stops with counts and a re-run completes."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.servers import azure_keyvault, moto_server, openbao, provider_settings as settings  # noqa: F401
from tests.test_provider_contract import ACTOR, make_local_vault, provider_config
from zerotrust_admin.audit.log import AuditLog
from zerotrust_admin.errors import DeniedError
from zerotrust_admin.providers import open_provider
from zerotrust_admin.providers.migrate import MigrateInterrupted, migrate


@pytest.fixture
def world(request, tmp_path):
    """open(kind) -> an audited provider; all share one audit log and one local vault."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    audit = AuditLog(home / "audit.log")
    vault = make_local_vault(home)
    opened = []

    def open_(kind: str):
        p = open_provider(kind, provider_config(tmp_path, kind, settings(request, kind)), audit=audit,
                          actor=ACTOR, open_local_vault=lambda: vault)
        opened.append(p)
        return p

    open_.audit = audit
    yield open_
    for p in opened:
        p.close()
    vault.close()


def values(provider, name: str) -> list[bytes]:
    return [provider.get(name, v.version)[0].reveal() for v in provider.history(name)]


@pytest.mark.parametrize("source_kind,target_kind", [("local", "hashicorp"), ("local", "aws"), ("local", "azure"), ("hashicorp", "local"), ("aws", "azure")])
def test_migrate_copies_every_version_and_is_idempotent(world, source_kind, target_kind):
    source, target = world(source_kind), world(target_kind)
    p = "m" + uuid.uuid4().hex[:8]
    source.put(f"{p}/db/password", b"v1")
    source.put(f"{p}/db/password", b"v2")
    source.put(f"{p}/db/password", b"v3")
    source.put(f"{p}/krb/keytab", bytes(range(256)))
    source.put(f"{p}/gone", b"deleted one")
    source.delete(f"{p}/gone")

    dry = migrate(source, target, dry_run=True, prefix=p + "/")
    assert (dry.secrets, dry.copied, dry.versions_copied, dry.skipped_deleted) == (2, 2, 4, 1)
    assert [i.name for i in target.list(p + "/")] == []

    result = migrate(source, target, prefix=p + "/")
    assert (result.secrets, result.copied, result.versions_copied, result.unchanged, result.skipped_deleted, result.failed) == (2, 2, 4, 0, 1, 0)
    assert values(target, f"{p}/db/password") == [b"v1", b"v2", b"v3"]
    assert target.get(f"{p}/krb/keytab")[0].reveal() == bytes(range(256))
    assert f"{p}/gone" not in [i.name for i in target.list(p + "/", include_deleted=True)]

    again = migrate(source, target, prefix=p + "/")
    assert (again.copied, again.versions_copied, again.unchanged) == (0, 0, 2)
    assert values(target, f"{p}/db/password") == [b"v1", b"v2", b"v3"]

    source.put(f"{p}/db/password", b"v4")
    later = migrate(source, target, prefix=p + "/")
    assert (later.copied, later.versions_copied, later.unchanged) == (1, 1, 1)
    assert target.get(f"{p}/db/password")[0].reveal() == b"v4"


def test_migrate_is_audited_with_counts_and_failures_without_values(world):
    source, target = world("local"), world("azure")
    p = "ma" + uuid.uuid4().hex[:8]
    too_long = f"{p}/" + "/".join(["Segment_With_Caps"] * 6)
    source.put(f"{p}/x", b"MIGRATED-VALUE-q7")
    source.put(too_long, b"MIGRATED-VALUE-q8")
    migrate(source, target, prefix=p + "/")
    records = [r for r in world.audit.records() if r["action"] == "migrate"]
    failed = [r for r in records if r["resource"] == too_long]
    assert len(failed) == 1 and failed[0]["success"] is False and failed[0]["details"]["error"] == "UsageError"
    summary = [r for r in records if r["resource"] == "local->azure"]
    assert len(summary) == 1 and summary[0]["success"] is False
    assert (summary[0]["details"]["copied"], summary[0]["details"]["failed"]) == (1, 1)
    exports = [r for r in world.audit.records() if r["action"] == "export"]
    assert exports, "the bulk read of the source is audited"
    assert b"MIGRATED-VALUE" not in world.audit.path.read_bytes()


def test_a_target_failing_midway_reports_counts_and_a_rerun_completes(world, azure_keyvault):
    source, target = world("local"), world("azure")
    p = "mf" + uuid.uuid4().hex[:8]
    names = [f"{p}/s{i:02d}" for i in range(24)]
    for name in names:
        source.put(name, name.encode() + b"-value")
    target.inner.list("")  # log in before the outage starts
    azure_keyvault.state.fail_after = 30  # ~3 requests per new secret: some get through, then Key Vault answers 503
    try:
        with pytest.raises(MigrateInterrupted) as err:
            migrate(source, target, prefix=p + "/")
    finally:
        azure_keyvault.state.fail_after = None
    partial = err.value.result
    assert err.value.exit_code == 6
    assert 0 < partial.copied < len(names) and partial.failed >= 1 and partial.copied + partial.failed <= len(names)
    assert f"copy {partial.copied}" in err.value.message or f"copied {partial.copied}" in err.value.message
    rerun = migrate(source, target, prefix=p + "/")
    assert rerun.copied + rerun.unchanged == len(names) and rerun.failed == 0
    assert rerun.unchanged >= partial.copied
    for name in names:
        assert target.get(name)[0].reveal() == name.encode() + b"-value"


def test_a_name_the_target_cannot_store_is_counted_and_the_rest_copied(world):
    source, target = world("local"), world("azure")
    p = "mn" + uuid.uuid4().hex[:8]
    too_long = f"{p}/" + "/".join(["Segment_With_Caps"] * 6)
    source.put(too_long, b"x")
    source.put(f"{p}/fine", b"y")
    result = migrate(source, target, prefix=p + "/")
    assert (result.copied, result.failed, result.failures) == (1, 1, [too_long])


def test_cli_migrate_with_targets_block(cli, tmp_path, openbao, initialized):
    import os

    import yaml

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"secrets": {"provider": "local", "targets": {"hashicorp": openbao.settings()}}}))
    os.chmod(cfg, 0o600)
    env = {"ZEROTRUST_CONFIG": str(cfg)}
    p = "mc" + uuid.uuid4().hex[:8]
    for i in range(3):
        assert cli("vault", "put", f"{p}/k{i}", input=f"value-{i}".encode(), env=env).code == 0
    r = cli("--json", "vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", "--dry-run", env=env)
    assert r.code == 0, r.err
    assert json.loads(r.out)["copied"] == 3 and json.loads(r.out)["dry_run"] is True
    r = cli("vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", env=env)
    assert r.code == 2 and "--yes" in r.err
    r = cli("--json", "vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", "--yes", env=env)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["source"], out["target"], out["copied"], out["failed"]) == ("local", "hashicorp", 3, 0)
    r = cli("vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", "--yes", env=env)
    assert r.code == 0 and "3 already there" in r.err
    r = cli("vault", "migrate", "--to", "aws", "--yes", env=env)
    assert r.code == 2 and "secrets.targets.aws" in r.err


# --- who may migrate what (access policies, reserved records, MFA) ---------------
def guard_for(world, policies: list):
    """The CLI's guard (access/guard.py) over a config holding only ``policies``."""
    from zerotrust_admin.access.guard import AccessGuard

    return AccessGuard({"access": {"policies": policies}}, ACTOR, world.audit)


def allow(names: str, *actions: str) -> dict:
    return {"principals": [ACTOR.user], "secrets": [names], "actions": list(actions), "effect": "allow"}


def test_a_denied_write_on_the_target_copies_nothing_and_is_audited_once(world):
    source, target = world("local"), world("hashicorp")
    p = "mp" + uuid.uuid4().hex[:8]
    for leaf in ("a", "b", "c"):
        source.put(f"{p}/{leaf}", f"value-{leaf}".encode())
    denied_b = [allow(f"{p}/*", "read", "write"),
                {"principals": ["*"], "secrets": [f"{p}/b"], "actions": ["write"], "effect": "deny"}]
    source.guard = target.guard = guard_for(world, denied_b)
    before = len(list(world.audit.records()))
    for dry_run in (True, False):  # a dry run reports the same denial
        with pytest.raises(DeniedError) as err:
            migrate(source, target, dry_run=dry_run, prefix=p + "/")
        assert err.value.exit_code == 4
        assert f"may not write {p}/b" in err.value.message and "1 of 3 secrets denied, nothing was copied" in err.value.message
    assert [i.name for i in target.inner.list(p + "/")] == []  # not even a, which was allowed
    new = list(world.audit.records())[before:]
    assert not [r for r in new if r["event"] == "secret_access" and r["action"] in ("read", "export", "write", "migrate")]  # nothing read or written
    new = [r for r in new if r["event"] == "access_denied"]
    assert [(r["action"], r["resource"]) for r in new] == [("write", f"{p}/b")] * 2  # one record per refused run
    assert new[0]["details"]["operation"] == "migrate" and (new[0]["details"]["denied"], new[0]["details"]["checked"]) == (1, 3)
    assert new[0]["user"] == ACTOR.user and new[0]["success"] is False

    source.guard = target.guard = guard_for(world, [allow(f"{p}/*", "read")])  # read only: every write denied
    with pytest.raises(DeniedError, match="3 of 3 secrets denied"):
        migrate(source, target, prefix=p + "/")

    source.guard = target.guard = guard_for(world, [allow(f"{p}/*", "read", "write")])
    result = migrate(source, target, prefix=p + "/")
    assert (result.copied, result.failed) == (3, 0)
    assert target.get(f"{p}/b")[0].reveal() == b"value-b"


def test_unlistable_names_are_left_out_and_reserved_records_never_copied(world):
    source, target = world("local"), world("hashicorp")
    p = "mr" + uuid.uuid4().hex[:8]
    source.put(f"{p}/app/one", b"1")
    source.put(f"{p}/ops/two", b"2")
    reserved = f"_zerotrust/mfa/{p}"
    source.inner.vault.put(reserved, b"a seed that must stay home", sensitive=True)  # as MfaStore writes it

    plain = migrate(source, target, prefix="_zerotrust/")  # no guard at all: still never copied
    assert (plain.secrets, plain.copied, plain.skipped_reserved) == (0, 0, 1)

    source.guard = target.guard = guard_for(world, [allow(f"{p}/app/*", "read", "write")])
    result = migrate(source, target)
    assert (result.secrets, result.copied, result.skipped_hidden, result.skipped_reserved) == (1, 1, 1, 1)
    assert "1 reserved (_zerotrust/) skipped" in result.summary() and "1 not visible to you skipped" in result.summary()
    copied = {i.name for i in target.inner.list("")}
    assert f"{p}/app/one" in copied and f"{p}/ops/two" not in copied and reserved not in copied


def _migrate_config(tmp_path, openbao, name: str, policies: list | None = None) -> dict:
    import os

    import yaml

    data = {"secrets": {"provider": "local", "targets": {"hashicorp": openbao.settings()}}}
    if policies is not None:
        data["access"] = {"policies": policies}
    cfg = tmp_path / name
    cfg.write_text(yaml.safe_dump(data))
    os.chmod(cfg, 0o600)
    return {"ZEROTRUST_CONFIG": str(cfg)}


def _bao_names(tmp_path, openbao, prefix: str) -> list[str]:
    (tmp_path / "bao-reader").mkdir(exist_ok=True)
    reader = open_provider("hashicorp", provider_config(tmp_path / "bao-reader", "hashicorp", openbao.settings()), audited=False)
    try:
        return sorted(i.name for i in reader.list(prefix))
    finally:
        reader.close()


def test_cli_migrate_denied_by_policy_exits_4_copies_nothing_and_is_audited(cli, tmp_path, openbao, initialized):
    p = "mx" + uuid.uuid4().hex[:8]
    open_env = _migrate_config(tmp_path, openbao, "open.yaml")
    for i in range(3):
        assert cli("vault", "put", f"{p}/k{i}", input=f"value-{i}".encode(), env=open_env).code == 0
    read_only = _migrate_config(tmp_path, openbao, "read-only.yaml", [
        {"principals": ["alice@EXAMPLE.COM"], "secrets": [f"{p}/*"], "actions": ["read"], "effect": "allow"}])
    dry = cli("vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", "--dry-run", env=read_only)
    assert dry.code == 4 and "3 of 3 secrets denied" in dry.err, dry.err
    denied = cli("vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", "--yes", env=read_only)
    assert denied.code == 4, denied.err
    first = denied.err.splitlines()[0]
    assert first == (f"zerotrust-admin: error: access denied: alice@EXAMPLE.COM may not write {p}/k0 "
                     "(no rule matched); 3 of 3 secrets denied, nothing was copied")
    assert "value-" not in denied.err and denied.out == b""
    assert _bao_names(tmp_path, openbao, f"{p}/") == []
    records = [json.loads(line) for line in (initialized / "audit.log").read_text().splitlines()]
    refusals = [r for r in records if r["event"] == "access_denied"]
    assert [(r["user"], r["action"], r["resource"], r["details"]["operation"], r["details"]["denied"]) for r in refusals] == \
        [("alice@EXAMPLE.COM", "write", f"{p}/k0", "migrate", 3)] * 2
    assert not [r for r in records if r["action"] in ("export", "migrate")]  # nothing was read or written

    read_write = _migrate_config(tmp_path, openbao, "read-write.yaml", [
        {"principals": ["alice@EXAMPLE.COM"], "secrets": [f"{p}/*"], "actions": ["read", "write"], "effect": "allow"}])
    ok = cli("--json", "vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", "--yes", env=read_write)
    assert ok.code == 0, ok.err
    assert (json.loads(ok.out)["copied"], json.loads(ok.out)["failed"]) == (3, 0)
    assert _bao_names(tmp_path, openbao, f"{p}/") == [f"{p}/k0", f"{p}/k1", f"{p}/k2"]


def test_cli_migrate_of_a_sensitive_secret_needs_one_mfa_code(cli, tmp_path, openbao, initialized):
    import time

    from tests.test_mfa import _enroll, _wait_fresh_step
    from zerotrust_admin.mfa import totp

    env = _migrate_config(tmp_path, openbao, "config.yaml")
    seed = _enroll(cli)  # also puts the MFA seed under _zerotrust/ in the local vault
    p = "ms" + uuid.uuid4().hex[:8]
    assert cli("vault", "put", f"{p}/plain", input=b"p", env=env).code == 0
    assert cli("vault", "put", f"{p}/secret", "--sensitive", input=b"s", env=env).code == 0
    for args in (["--dry-run"], ["--yes"]):
        refused = cli("vault", "migrate", "--to", "hashicorp", "--prefix", f"{p}/", *args, env=env)
        assert refused.code == 4 and "needs an MFA code" in refused.err, refused.err
    assert _bao_names(tmp_path, openbao, f"{p}/") == []  # the plain one was not copied either
    _wait_fresh_step()
    ok = cli("--json", "vault", "migrate", "--to", "hashicorp", "--yes", env={**env, "ZEROTRUST_OTP": totp.totp(seed, time.time())})
    assert ok.code == 0, ok.err
    out = json.loads(ok.out)
    assert (out["copied"], out["skipped_reserved"]) == (2, 1)
    assert _bao_names(tmp_path, openbao, f"{p}/") == [f"{p}/plain", f"{p}/secret"]
    assert _bao_names(tmp_path, openbao, "_zerotrust/") == []  # the seed stayed in the integrated vault

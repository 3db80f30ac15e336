"""``rotate-secrets`` and ``secrets status`` through the real entry point (a
subprocess, as cron runs it): due / forced / dry run / nothing due, the lock
(exit 7), access policies (exit 4), config errors (exit 2), a failure that is
notified (exit 1), and no value in the output or the audit log."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
import yaml

from tests.servers import http_capture, redis_server, redis_server_process  # noqa: F401  (fixtures)


def write_config(tmp_path: Path, entries: list, **extra) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"secret_rotation": entries, **extra}))
    os.chmod(path, 0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def random_entry(name="api/key", **target) -> dict:
    return {"secret": name, "kind": "random", "every": "30d", "grace": "1h", "target": {"length": 24, "alphabet": "hex", **target}}


def audit_records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines() if line.strip()]


def test_first_run_creates_then_nothing_due_then_forced(cli, initialized, tmp_path):
    env = write_config(tmp_path, [random_entry()])
    first = cli("rotate-secrets", "--json", env=env)
    assert first.code == 0, first.err
    out = json.loads(first.out)
    # A first value has no previous credential to keep: it is retired at once.
    assert out["results"][0]["result"] == "done" and out["results"][0]["steps"] == ["created", "applied", "tested", "finished", "retired"]
    value = cli("vault", "get", "api/key", env=env)
    assert value.code == 0 and len(value.out) == 24 and all(c in b"0123456789abcdef" for c in value.out)
    again = cli("rotate-secrets", env=env)
    assert again.code == 0 and "Nothing due" in again.err
    assert json.loads(cli("rotate-secrets", "--json", env=env).out)["nothing_due"] is True
    forced = cli("rotate-secrets", "--secret", "api/key", env=env)
    assert forced.code == 0 and "rotated to version 2, previous kept until" in forced.err
    second = cli("vault", "get", "api/key", env=env).out
    assert second != value.out
    # In its grace period a forced rotation is refused (it would cut the grace short).
    refused = cli("rotate-secrets", "--secret", "api/key", env=env)
    assert refused.code == 2 and "grace period" in refused.err
    assert cli("vault", "get", "api/key", env=env).out == second
    records = [r for r in audit_records(initialized) if r.get("event") == "secret_rotation"]
    assert [r["details"]["step"] for r in records] == ["created", "applied", "tested", "finished", "retired",
                                                       "created", "applied", "tested", "finished"]
    log = (initialized / "audit.log").read_text()
    assert value.out.decode() not in log and second.decode() not in log
    assert value.out.decode() not in first.text + first.err


def test_dry_run_and_status(cli, initialized, tmp_path):
    env = write_config(tmp_path, [random_entry(), random_entry("api/other", length=32)])
    assert cli("vault", "put", "api/other", input=b"0123456789abcdef0123456789abcdef", env=env).code == 0
    dry = cli("rotate-secrets", "--dry-run", "--json", env=env)
    assert dry.code == 0, dry.err
    plan = {p["secret"]: p["action"] for p in json.loads(dry.out)["plan"]}
    assert plan == {"api/key": "rotate", "api/other": "none"}
    assert cli("vault", "get", "api/key", env=env).code == 3, "a dry run writes nothing"
    status = cli("secrets", "status", "--json", env=env)
    assert status.code == 0, status.err
    rows = {r["secret"]: r for r in json.loads(status.out)["secrets"]}
    assert rows["api/key"]["stage"] == "missing" and rows["api/key"]["overdue"] is True
    assert rows["api/other"]["stage"] == "current" and rows["api/other"]["overdue"] is False and rows["api/other"]["version"] == 1
    forced = cli("rotate-secrets", "--secret", "api/other", "--json", env=env)
    assert forced.code == 0, forced.err
    rows = {r["secret"]: r for r in json.loads(cli("secrets", "status", "--json", env=env).out)["secrets"]}
    assert rows["api/other"]["stage"] == "current + previous (grace)" and rows["api/other"]["version"] == 2
    assert rows["api/other"]["last_result"] == "ok"
    text = cli("secrets", "status", env=env)
    assert text.code == 0 and "api/other\trandom\t2\t" in text.text and "\t-\tcurrent + previous (grace)\tok" in text.text


def test_busy_lock_is_exit_7_and_changes_nothing(cli, initialized, tmp_path):
    env = write_config(tmp_path, [random_entry()])
    lock = initialized / "locks" / "rotate-secrets.lock"
    lock.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        busy = cli("rotate-secrets", env=env)
    finally:
        os.close(fd)
    assert busy.code == 7, busy.err
    assert cli("vault", "get", "api/key", env=env).code == 3


def test_unknown_secret_and_bad_config(cli, initialized, tmp_path):
    env = write_config(tmp_path, [random_entry()])
    unknown = cli("rotate-secrets", "--secret", "nope/x", env=env)
    assert unknown.code == 3 and "not a managed secret" in unknown.err
    inline = write_config(tmp_path, [{"secret": "redis/app", "kind": "redis", "every": "30d", "grace": "1h",
                                      "target": {"url": "redis://127.0.0.1:6379/0", "user": "app", "admin_password": "hunter2"}}])
    bad = cli("rotate-secrets", env=inline)
    assert bad.code == 2 and "secret_rotation[0].target.admin_password" in bad.err and "hunter2" not in bad.err
    kind = write_config(tmp_path, [{"secret": "x/y", "kind": "ftp", "every": "30d"}])
    bad = cli("secrets", "status", env=kind)
    assert bad.code == 2 and "secret_rotation[0].kind" in bad.err
    grace = write_config(tmp_path, [random_entry(), {**random_entry("b/c"), "grace": "31d"}])
    bad = cli("config", "check", env=grace)
    assert bad.code != 0 and "grace" in (bad.text + bad.err)
    clean = write_config(tmp_path, [random_entry()])
    assert cli("config", "check", env=clean).code == 0, "secret: NAME is a name, not a plaintext secret"
    shown = cli("config", "show", env=clean)
    assert shown.code == 0 and "secret: api/key" in shown.text


def test_access_policy_rotate_action(cli, initialized, tmp_path):
    policies = {"access": {"policies": [
        {"principals": ["alice@EXAMPLE.COM"], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"},
        {"principals": ["cron@EXAMPLE.COM"], "secrets": ["api/*"], "actions": ["rotate", "list"], "effect": "allow"}]}}
    env = write_config(tmp_path, [random_entry()], **policies)
    denied = cli("rotate-secrets", env=env)
    assert denied.code == 4 and "may not rotate api/key" in denied.err
    assert any(r["event"] == "access_denied" and r["action"] == "rotate" for r in audit_records(initialized))
    ok = cli("rotate-secrets", env={**env, "ZEROTRUST_PRINCIPAL": "cron@EXAMPLE.COM"})
    assert ok.code == 0, ok.err


def test_failure_rolls_back_exits_1_and_is_notified(cli, initialized, tmp_path, http_capture):  # noqa: F811
    hook = http_capture()
    sec = tmp_path / "sec"
    sec.mkdir(mode=0o700)
    (sec / "hook.key").write_text("notify-key")
    os.chmod(sec / "hook.key", 0o600)
    notify = {"security": {"breach_notification": {"enabled": True, "retries": 0, "channels": [
        {"webhook": {"url": hook.url("/alerts"), "secret_file": str(sec / "hook.key")}}]}}}
    dead = "http://127.0.0.1:9/rotate"  # nothing listens on the discard port
    env = write_config(tmp_path, [random_entry(webhook_url=dead, webhook_secret="hooks/key")], **notify)
    assert cli("vault", "put", "hooks/key", input=b"k" * 32, env=env).code == 0
    assert cli("vault", "put", "api/key", input=b"0" * 24, env=env).code == 0
    failed = cli("rotate-secrets", "--secret", "api/key", "--json", env=env)
    assert failed.code == 1, failed.err
    result = json.loads(failed.out)["results"][0]
    assert result["result"] == "failed" and result["error"] == "UnavailableError"
    assert cli("vault", "get", "api/key", env=env).out == b"0" * 24, "the current value is unchanged"
    notes = [json.loads(r["body"]) for r in hook.requests]
    assert any(n.get("event") == "secret_rotation_failed" and n["details"]["secret"] == "api/key" for n in notes), notes
    rows = json.loads(cli("secrets", "status", "--json", env=env).out)["secrets"]
    assert rows[0]["last_result"] == "failed:UnavailableError at apply"


def test_redis_rotation_from_the_cli(cli, initialized, tmp_path, redis_server_process):  # noqa: F811
    import redis

    admin_pw, old = os.urandom(12).hex(), os.urandom(12).hex()
    c = redis_server_process.client()
    c.execute_command("ACL", "SETUSER", "cliadmin", "on", ">" + admin_pw, "~*", "&*", "+@all")
    c.execute_command("ACL", "SETUSER", "cliapp", "on", ">" + old, "~*", "+@all")
    c.close()
    env = write_config(tmp_path, [{"secret": "redis/app", "kind": "redis", "every": "30d", "grace": "1h",
                                   "target": {"url": redis_server_process.url, "user": "cliapp", "admin_user": "cliadmin", "admin_secret": "redis/admin"}}])
    assert cli("vault", "put", "redis/admin", input=admin_pw.encode(), env=env).code == 0
    assert cli("vault", "put", "redis/app", input=old.encode(), env=env).code == 0
    run = cli("rotate-secrets", "--secret", "redis/app", env=env)
    assert run.code == 0, run.err
    new = cli("vault", "get", "redis/app", env=env).out.decode()
    for password in (old, new):
        r = redis.Redis(host="127.0.0.1", port=redis_server_process.port, username="cliapp", password=password)
        assert r.ping()
        r.close()
    assert new not in run.err and old not in run.err and admin_pw not in (initialized / "audit.log").read_text()

"""Key rotation: schedule, master/DEK/session rotation, locking, crash safety, audit."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.keyhelpers import check_all, cli_json, db_rows, fill, meta, open_vault, run_with_crash
from tests.servers import moto_server, openbao  # noqa: F401  (fixtures)


def audit_records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]


def rotation_records(home: Path) -> list[dict]:
    return [r for r in audit_records(home) if r["event"] == "key_rotation" and r["action"] == "rotate"]


def assert_clean_state(home: Path) -> None:
    """After a completed rotation: one active DEK, nothing retired, no leftovers."""
    deks = db_rows(home, "SELECT state FROM deks")
    assert [d[0] for d in deks] == ["active"]
    m = meta(home)
    assert "master_pending" not in m and "master_retiring" not in m
    assert not (home / "master.key.previous").exists()
    assert db_rows(home, "SELECT COUNT(*) FROM versions WHERE dek_id NOT IN (SELECT id FROM deks)") == [(0,)]


# --- schedule ----------------------------------------------------------------------
def test_policy_defaults_and_config():
    from zerotrust_admin.errors import ConfigError
    from zerotrust_admin.rotation import Policy

    assert Policy.from_config({}) == Policy(90, 30, 24, True)
    custom = Policy.from_config({"encryption": {"rotation": {"master_days": 7, "dek_days": 2, "session_hours": 3}}})
    assert (custom.master_days, custom.dek_days, custom.session_hours) == (7, 2, 3)
    assert custom.interval("session") == timedelta(hours=3)
    with pytest.raises(ConfigError):
        Policy.from_config({"encryption": {"rotation": {"dek_days": 0}}})


def test_plan_follows_key_ages(initialized, zt_env):
    from zerotrust_admin.rotation import Policy, plan
    from zerotrust_admin.timeutil import parse_rfc3339

    vault, _, _ = open_vault(zt_env)
    try:
        vault.rotate_session_key()
        created = parse_rfc3339(vault.meta["master_created"])
        policy = Policy(master_days=10, dek_days=5, session_hours=2)

        def due(offset: timedelta) -> dict:
            return {i.kind: i.reason for i in plan(vault, policy, now=created + offset)}

        assert due(timedelta(hours=1)) == {"master": "not due", "dek": "not due", "session": "not due"}
        assert due(timedelta(hours=3)) == {"master": "not due", "dek": "not due", "session": "due"}
        assert due(timedelta(days=6)) == {"master": "not due", "dek": "due", "session": "due"}
        assert due(timedelta(days=11)) == {"master": "due", "dek": "due", "session": "due"}
        forced = {i.kind: (i.action, i.reason) for i in plan(vault, policy, force={"dek"}, now=created)}
        assert forced["dek"] == (True, "forced") and forced["master"] == (False, "not due")
        disabled = Policy(master_days=10, dek_days=5, session_hours=2, enabled=False)
        assert not any(i.action for i in plan(vault, disabled, now=created + timedelta(days=400)))
    finally:
        vault.close()


# --- CLI: nothing due, dry run, schedule-driven run -------------------------------------
def test_nothing_due_is_success_and_changes_nothing(cli, initialized):
    before = cli_json(cli, "keys", "status")
    result = cli("rotate-keys")
    assert result.code == 0, result.err
    assert "Nothing due" in result.err
    report = cli_json(cli, "rotate-keys")
    assert report["nothing_due"] is True and report["rotated"] == []
    after = cli_json(cli, "keys", "status")
    assert [k["id"] for k in after["keys"]] == [k["id"] for k in before["keys"]]
    assert rotation_records(initialized) == []


def test_dry_run_shows_plan_and_changes_nothing(cli, initialized):
    before = meta(initialized)
    key_before = (initialized / "master.key").read_bytes()
    audit_before = (initialized / "audit.log").read_bytes()
    plan = cli_json(cli, "rotate-keys", "--all", "--dry-run")
    assert plan["dry_run"] is True and plan["rotated"] == []
    assert {p["kind"]: (p["action"], p["reason"]) for p in plan["plan"]} == {
        "master": (True, "forced"), "dek": (True, "forced"), "session": (True, "forced")}
    text = cli("rotate-keys", "--master", "--dry-run")
    assert text.code == 0 and "rotate: forced" in text.text and "skip: not due" in text.text
    assert meta(initialized) == before
    assert (initialized / "master.key").read_bytes() == key_before
    assert (initialized / "audit.log").read_bytes() == audit_before


def test_overdue_master_key_is_flagged_and_rotated_by_the_scheduled_run(cli, initialized, zt_env):
    """Key times are authenticated (an edited master_created is refused, below), so
    the clock moves instead: two days on with master_days 1, the scheduled run
    (no flags) finds the master key overdue and rotates it, nothing else."""
    from zerotrust_admin.rotation.run import rotate_keys
    from zerotrust_admin.rotation.schedule import Policy
    from zerotrust_admin.rotation.status import key_status
    from zerotrust_admin.timeutil import utcnow

    expected = fill(zt_env, 20)
    later = utcnow() + timedelta(days=2)
    vault, config, kctx = open_vault(zt_env)
    try:
        config.data.setdefault("encryption", {})["rotation"] = {"master_days": 1, "dek_days": 3650, "session_hours": 24}
        policy = Policy.from_config(config.data)
        master = next(k for k in key_status(vault, policy, now=later) if k["kind"] == "master")
        assert master["overdue"] is True and master["state"] == "overdue"
        old_id = master["id"]
        report = rotate_keys(vault, config, kctx, now=later)
        assert [r["kind"] for r in report["rotated"]] == ["master"]
        assert report["rotated"][0]["reason"] == "due"
        master = next(k for k in key_status(vault, policy) if k["kind"] == "master")
        assert master["id"] != old_id and master["overdue"] is False
    finally:
        vault.close()
    check_all(zt_env, expected)
    status = cli_json(cli, "keys", "status")
    assert next(k for k in status["keys"] if k["kind"] == "master")["overdue"] is False


def test_rotation_decides_on_authenticated_key_times_only(cli, initialized, zt_env):
    """A master or data key 'created' moved into the future would make rotate-keys say
    "not due" forever: an edited time does not authenticate, so keys status and
    rotate-keys refuse (exit 5) instead of deciding on it."""
    import sqlite3

    for sql in ("UPDATE meta SET value = '2099-01-01T00:00:00.000000Z' WHERE key = 'master_created'",
                "UPDATE deks SET created = '2099-01-01T00:00:00.000000Z'"):
        conn = sqlite3.connect(initialized / "vault.db")
        genuine = {"meta": conn.execute("SELECT key, value FROM meta").fetchall(), "deks": conn.execute("SELECT id, created FROM deks").fetchall()}
        conn.execute(sql)
        conn.commit()
        for argv in (("keys", "status"), ("rotate-keys", "--dry-run"), ("rotate-keys",)):
            r = cli(*argv)
            assert r.code == 5, (sql, argv, r.code, r.err)
        conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in genuine["meta"]])
        conn.executemany("UPDATE deks SET created = ? WHERE id = ?", [(c, i) for i, c in genuine["deks"]])
        conn.commit()
        conn.close()
        assert cli("keys", "status").code == 0


def test_keys_status_lists_every_key(cli, initialized, zt_env):
    cli_json(cli, "rotate-keys", "--session")
    cli_json(cli, "rotate-keys", "--session")
    status = cli_json(cli, "keys", "status")
    kinds = [k["kind"] for k in status["keys"]]
    assert kinds.count("master") == 1 and kinds.count("dek") == 1 and kinds.count("audit") == 1
    sessions = [k for k in status["keys"] if k["kind"] == "session"]
    assert sorted(s["state"] for s in sessions) == ["current", "previous"]
    for key in status["keys"]:
        assert set(key) >= {"id", "kind", "created", "age", "next_due", "state", "overdue"}
        assert key["id"] and key["created"]
    audit_key = (initialized / "audit.key").read_text().strip()
    master_key = (initialized / "master.key").read_text().strip()
    raw = json.dumps(status)
    assert audit_key not in raw and master_key not in raw


# --- master rotation ----------------------------------------------------------------------
def test_master_rotation_rewraps_deks_only(cli, initialized, zt_env):
    expected = fill(zt_env, 50, versions=2)
    sealed_before = db_rows(initialized, "SELECT name, version, sealed FROM versions ORDER BY name, version")
    wrapped_before = db_rows(initialized, "SELECT id, wrapped FROM deks")
    old_key = (initialized / "master.key").read_text().strip()
    old_id = meta(initialized)["master_key_id"]
    report = cli_json(cli, "rotate-keys", "--master")
    rotated = report["rotated"][0]
    assert rotated["old_master_key_id"] == old_id and rotated["new_master_key_id"] != old_id
    new_key = (initialized / "master.key").read_text().strip()
    assert new_key != old_key
    assert (initialized / "master.key").stat().st_mode & 0o777 == 0o600
    # Secrets were not touched; data keys were re-wrapped under the new master key.
    assert db_rows(initialized, "SELECT name, version, sealed FROM versions ORDER BY name, version") == sealed_before
    wrapped_after = db_rows(initialized, "SELECT id, wrapped FROM deks")
    assert [w[0] for w in wrapped_after] == [w[0] for w in wrapped_before]
    assert all(a[1] != b[1] for a, b in zip(wrapped_after, wrapped_before))
    assert set(db_rows(initialized, "SELECT master_key_id FROM deks")) == {(rotated["new_master_key_id"],)}
    assert_clean_state(initialized)
    check_all(zt_env, expected)
    # The old key no longer opens the vault.
    (initialized / "master.key").write_text(old_key + "\n")
    assert cli("vault", "get", "app/s1").code == 4
    (initialized / "master.key").write_text(new_key + "\n")
    records = rotation_records(initialized)
    assert records[-1]["success"] is True and records[-1]["resource"] == "master-key"
    assert records[-1]["details"]["old_key_id"] == old_id
    log = (initialized / "audit.log").read_text()
    assert old_key not in log and new_key not in log


def test_master_rotation_refused_for_env_key(cli, zt_env, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    env = {"ZEROTRUST_ENCRYPTION_KEY": key}
    assert cli("init", env=env).code == 0
    result = cli("rotate-keys", "--master", env=env)
    assert result.code == 2 and "ZEROTRUST_ENCRYPTION_KEY" in result.err
    plan = cli_json(cli, "rotate-keys", "--dry-run", env=env)
    assert next(p for p in plan["plan"] if p["kind"] == "master")["reason"] == "manual"
    assert cli("rotate-keys", "--dek", env=env).code == 0


def test_loose_key_file_permissions_refused(cli, initialized):
    os.chmod(initialized / "master.key", 0o644)
    before = meta(initialized)
    result = cli("rotate-keys", "--master")
    assert result.code == 2 and "master.key" in result.err and "chmod 600" in result.err
    assert meta(initialized) == before
    os.chmod(initialized / "master.key", 0o600)


# --- DEK rotation -----------------------------------------------------------------------------
def test_dek_rotation_reencrypts_in_batches_with_progress(initialized, zt_env):
    from zerotrust_admin.rotation.dek import rotate_dek

    expected = fill(zt_env, 300, versions=2)
    old = db_rows(initialized, "SELECT id FROM deks")
    sealed_before = dict(((n, v), s) for n, v, s in db_rows(initialized, "SELECT name, version, sealed FROM versions"))
    vault, _, _ = open_vault(zt_env)
    calls: list[tuple[int, int]] = []
    try:
        result = rotate_dek(vault, batch=64, progress=lambda done, total: calls.append((done, total)))
    finally:
        vault.close()
    assert result["reencrypted"] == 600 and result["retired_dek_ids"] == [old[0][0]]
    assert calls[0] == (0, 600) and calls[-1] == (600, 600)
    assert len(calls) == 1 + (600 + 63) // 64
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    rows = db_rows(initialized, "SELECT name, version, dek_id, sealed FROM versions")
    assert {r[2] for r in rows} == {result["new_dek_id"]}
    assert all(sealed_before[(n, v)] != s for n, v, _, s in rows)
    assert_clean_state(initialized)
    check_all(zt_env, expected)


def test_get_and_put_keep_working_during_dek_rotation(initialized, zt_env):
    """Another connection reads and writes between every batch of the rotation."""
    from zerotrust_admin.rotation.dek import rotate_dek

    expected = fill(zt_env, 200)
    other, _, _ = open_vault(zt_env)
    written: dict[str, bytes] = {}

    def interleave(step: str) -> None:
        if step != "batch":
            return
        n = len(written)
        value = f"during-{n}".encode()
        other.put(f"live/{n}", value)
        written[f"live/{n}"] = value
        secret, _ = other.get("app/s7")
        assert secret.reveal() == expected["app/s7"][0]

    vault, _, _ = open_vault(zt_env)
    try:
        result = rotate_dek(vault, batch=25, checkpoint=interleave)
    finally:
        vault.close()
        other.close()
    assert len(written) == 8
    assert result["reencrypted"] == 200  # writes during the rotation went straight to the new key
    assert_clean_state(initialized)
    check_all(zt_env, {**expected, **{k: [v] for k, v in written.items()}})


# --- session key ring --------------------------------------------------------------------------
def test_session_key_ring_current_and_previous(cli, initialized, zt_env):
    from zerotrust_admin.config import load_config
    from zerotrust_admin.rotation import SessionKeyRing

    config = load_config(environ=zt_env)
    with SessionKeyRing.open(config) as ring:
        token = ring.sign(b"session-1|alice|exp")
        first_id = ring.ids()[0]
        assert ring.verify(b"session-1|alice|exp", token)
        assert not ring.verify(b"session-1|mallory|exp", token)
    cli_json(cli, "rotate-keys", "--session")
    with SessionKeyRing.open(config) as ring:
        assert ring.ids()[1] == first_id and ring.ids()[0] != first_id
        assert ring.verify(b"session-1|alice|exp", token), "a session signed before the rotation must stay valid"
        new_token = ring.sign(b"session-2|bob|exp")
        assert new_token.split(".")[0] == ring.ids()[0]
    cli_json(cli, "rotate-keys", "--session")
    with SessionKeyRing.open(config) as ring:
        assert first_id not in ring.ids() and len(ring.ids()) == 2
        assert not ring.verify(b"session-1|alice|exp", token)
        assert ring.verify(b"session-2|bob|exp", new_token)
    # Session keys survive a master rotation (they are re-wrapped too).
    cli_json(cli, "rotate-keys", "--master")
    with SessionKeyRing.open(config) as ring:
        assert ring.verify(b"session-2|bob|exp", new_token)


# --- concurrency ------------------------------------------------------------------------------
def test_overlapping_rotation_exits_busy(cli, initialized, zt_env):
    from zerotrust_admin.config import load_config
    from zerotrust_admin.sessions.lock import distributed_lock

    before = meta(initialized)
    with distributed_lock(load_config(environ=zt_env), "rotate-keys"):
        result = cli("rotate-keys", "--dek")
    assert result.code == 7, result.err
    assert "lock" in result.err and result.err.count("error:") == 1
    assert meta(initialized) == before and len(db_rows(initialized, "SELECT id FROM deks")) == 1
    failure = rotation_records(initialized)[-1]
    assert failure["success"] is False and failure["details"]["error"] == "BusyError"
    assert cli("rotate-keys", "--dek").code == 0


def test_two_rotations_at_once_never_both_rotate(cli, initialized, zt_env):
    fill(zt_env, 3000)
    env = {**os.environ, **zt_env}
    procs = [subprocess.Popen([sys.executable, "-m", "zerotrust_admin", "rotate-keys", "--dek", "--json"], env=env, cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes in ([0, 0], [0, 7])
    successes = [r for r in rotation_records(initialized) if r["success"]]
    # Both may succeed only one after the other (the second then rotates again); never interleaved.
    assert len(successes) == codes.count(0)
    assert_clean_state(initialized)


# --- crash safety -----------------------------------------------------------------------------
MASTER_POINTS = [("locked", 1), ("pending-recorded", 1), ("previous-written", 1), ("new-key-written", 1), ("committed", 1), ("retired-destroyed", 1)]
DEK_POINTS = [("dek-added", 1), ("batch", 1), ("batch", 3), ("purged", 1)]


@pytest.mark.parametrize("kill_at,nth", MASTER_POINTS + DEK_POINTS + [("session-rotated", 1)])
def test_sigkill_during_rotation_then_rerun_completes(cli, initialized, zt_env, kill_at, nth):
    expected = fill(zt_env, 200, versions=2)
    old_master = meta(initialized)["master_key_id"]
    proc = run_with_crash({**os.environ, **zt_env}, kill_at, nth, "rotate", "master,dek,session", batch=50)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # Whatever the point, the vault opens (old or new master key) and every version reads.
    check_all(zt_env, expected)
    assert cli("vault", "get", "app/s0").code == 0
    # Re-running finishes the job: no flags needed for an interrupted one.
    rerun = cli_json(cli, "rotate-keys")
    if kill_at in ("locked", "pending-recorded", "previous-written", "new-key-written"):
        assert meta(initialized)["master_key_id"] == old_master or any(r["kind"] == "master" for r in rerun["rotated"])
    cli_json(cli, "rotate-keys", "--dek")
    assert_clean_state(initialized)
    check_all(zt_env, expected)


def test_sigkill_at_random_moments_of_a_cli_rotation(cli, initialized, zt_env):
    expected = fill(zt_env, 4000)
    env = {**os.environ, **zt_env}
    for delay in (0.35, 0.5, 0.7, 0.9):
        proc = subprocess.Popen([sys.executable, "-m", "zerotrust_admin", "rotate-keys", "--all"], env=env, cwd=str(ROOT),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert cli("vault", "get", "app/s3999").code == 0
    assert cli("rotate-keys", "--all").code == 0
    assert_clean_state(initialized)
    check_all(zt_env, expected)


def test_passphrase_vault_master_rotation(cli, zt_env):
    env = {"ZEROTRUST_PASSPHRASE": "a long enough passphrase"}
    assert cli("init", "--passphrase", env=env).code == 0
    assert cli("vault", "put", "x", input=b"value", env=env).code == 0
    home = Path(zt_env["ZEROTRUST_HOME"])
    salt_before = json.loads(meta(home)["master_params"])["kdf"]["salt_hex"]
    report = cli_json(cli, "rotate-keys", "--master", env=env)
    assert report["rotated"][0]["from"] == "passphrase"
    assert json.loads(meta(home)["master_params"])["kdf"]["salt_hex"] != salt_before  # a new key from a new salt
    assert cli("vault", "get", "x", env=env).out == b"value"
    assert cli("vault", "get", "x", env={"ZEROTRUST_PASSPHRASE": "not the passphrase"}).code == 4


def test_transit_master_rotation_moves_data_keys_to_the_new_version(tmp_path, openbao):  # noqa: F811
    """A master key in Vault transit (real OpenBao): rotation bumps the transit key
    version and re-wraps the data keys under it; keys status shows the version."""
    from zerotrust_admin.audit.log import Actor, AuditLog
    from zerotrust_admin.keys import KeySourceContext, open_source, source_class
    from zerotrust_admin.rotation import Policy
    from zerotrust_admin.rotation.master import change_master
    from zerotrust_admin.rotation.status import key_status
    from zerotrust_admin.vault import Vault

    config = {"encryption": {"transit": {"enabled": True, "key_name": "zt-rot-" + os.urandom(3).hex(), "url": openbao.url,
                                         "role_id": openbao.role_id, "secret_id": openbao.secret_id, "timeout": 3}}}
    kctx = KeySourceContext(config=config, home=tmp_path, environ={})
    actor = Actor("tester@EXAMPLE.COM", "127.0.0.1")
    vault = Vault.create(tmp_path / "vault.db", "transit", lambda key_id: source_class("transit").create(kctx, key_id),
                         audit=AuditLog(tmp_path / "audit.log"), actor=actor)
    vault.put("db/password", b"behind transit")
    vault.close()
    vault = Vault.open(tmp_path / "vault.db", lambda k, p: open_source(k, kctx, p))
    try:
        before = vault.key_source.provider_key_status()["version"]
        result = change_master(vault, kctx)
        assert result["from"] == result["to"] == "transit"
        wrapped = db_rows(tmp_path, "SELECT wrapped FROM deks")[0][0]
        assert wrapped.startswith(f"vault:v{before + 1}:".encode())
        master = next(r for r in key_status(vault, Policy()) if r["kind"] == "master")
        assert master["id"] == result["new_master_key_id"] and f"version {before + 1}" in master["note"]
    finally:
        vault.close()
    vault = Vault.open(tmp_path / "vault.db", lambda k, p: open_source(k, kctx, p))
    try:
        assert vault.get("db/password")[0].reveal() == b"behind transit"
    finally:
        vault.close()


def test_external_provider_key_in_status_and_rotation(cli, zt_env, tmp_path, moto_server):  # noqa: F811
    """secrets.provider aws without an integrated vault: keys status shows the KMS
    key, rotate-keys --provider rotates it (audited), plain rotate-keys is a no-op."""
    import yaml

    key = moto_server.client("kms").create_key(Description="zt rotation test")["KeyMetadata"]["KeyId"]
    cfg = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    cfg.parent.mkdir(parents=True, mode=0o700)
    cfg.write_text(yaml.safe_dump({"secrets": {"provider": "aws", "config": moto_server.settings(kms_key_id=key)}}))
    os.chmod(cfg, 0o600)
    status = cli_json(cli, "keys", "status")
    assert [(k["kind"], k["id"]) for k in status["keys"]] == [("provider", key)]
    assert "rotation: disabled" in status["keys"][0]["note"]
    nothing = cli_json(cli, "rotate-keys")
    assert nothing["nothing_due"] is True and "provider" not in nothing
    rotated = cli_json(cli, "rotate-keys", "--provider")
    assert rotated["provider"]["action"] in ("rotated on demand", "automatic rotation enabled")
    status = cli_json(cli, "keys", "status")
    assert "rotation: enabled" in status["keys"][0]["note"]
    home = Path(zt_env["ZEROTRUST_HOME"])
    records = [json.loads(x) for x in (home / "audit.log").read_text().splitlines()]
    assert [(r["event"], r["resource"], r["success"]) for r in records if r["event"] == "key_rotation"] == [("key_rotation", key, True)]


def test_a_reader_opened_before_a_master_rotation_keeps_working(initialized, zt_env):
    from zerotrust_admin.rotation.master import change_master

    expected = fill(zt_env, 5)
    reader, _, _ = open_vault(zt_env, audited=False)  # opened with the old key, no data key cached yet
    rotator, _, kctx = open_vault(zt_env)
    try:
        change_master(rotator, kctx)
        secret, _ = reader.get("app/s2")  # its data key is now wrapped under the new master key
        assert secret.reveal() == expected["app/s2"][0]
        assert reader.master_key_id == rotator.master_key_id
    finally:
        reader.close()
        rotator.close()


def test_rotation_blocked_by_a_long_vault_write_is_busy_and_changes_nothing(initialized, zt_env, monkeypatch):
    """Another process holding SQLite's write lock (a long import) makes rotation
    fail with BusyError (exit 7) once the busy timeout runs out, leaving the
    vault as it was; the timeout is shortened here from 30 s to 300 ms."""
    import sqlite3

    from zerotrust_admin.errors import BusyError
    from zerotrust_admin.rotation.dek import rotate_dek
    from zerotrust_admin.vault import vault as vault_module

    expected = fill(zt_env, 50)
    before = db_rows(initialized, "SELECT id FROM deks")
    monkeypatch.setattr(vault_module, "BUSY_TIMEOUT_MS", 300)
    vault, _, _ = open_vault(zt_env, audited=False)
    holder = sqlite3.connect(initialized / "vault.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # what a concurrent `vault import` holds while it writes
        started = time.monotonic()
        with pytest.raises(BusyError) as caught:
            rotate_dek(vault)
        assert time.monotonic() - started < 10
        assert caught.value.exit_code == 7 and "locked" in caught.value.message
        holder.execute("ROLLBACK")
        assert db_rows(initialized, "SELECT id FROM deks") == before  # nothing half-done
        result = rotate_dek(vault)  # once the writer is gone, the same call succeeds
        assert result["new_dek_id"] != before[0][0]
    finally:
        holder.close()
        vault.close()
    check_all(zt_env, expected)

"""revoke-sessions against both stores through the real CLI, plus the faults:
Redis down, wrong password, Redis killed mid --all, unknown targets, no TTY."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import write_user_config
from tests.servers import (  # noqa: F401
    RedisServer,
    free_port,
    redis_clean,
    redis_server,
    redis_server_process,
    redis_tls,
    redis_with_password,
)
from zerotrust_admin.audit import AuditLog
from zerotrust_admin.config import load_config
from zerotrust_admin.errors import BusyError, NotFoundError
from zerotrust_admin.identity import current_actor
from zerotrust_admin.sessions import make_session, open_session_store
from zerotrust_admin.sessions.base import InterruptedDeletion
from zerotrust_admin.sessions.lock import distributed_lock
from zerotrust_admin.sessions.revoke import Target, revoke_sessions

ALICE, BOB = "alice@EXAMPLE.COM", "bob@EXAMPLE.COM"


def open_store(zt_env):
    return open_session_store(load_config(environ=zt_env))


def audit_records(zt_env) -> list[dict]:
    return list(AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").records())


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, zt_env):
    if request.param == "redis":
        write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": request.getfixturevalue("redis_clean")}})
    return request.param


def seed(zt_env, per_user: dict[str, int]) -> dict[str, list]:
    store = open_store(zt_env)
    made = {u: [make_session(u, 3600, "10.0.0.9", now=time.time() - 1) for _ in range(n)] for u, n in per_user.items()}
    store.put_many([s for v in made.values() for s in v])
    store.close()
    return made


def test_revoke_user(cli, zt_env, backend):
    seed(zt_env, {ALICE: 3, BOB: 2})
    r = cli("revoke-sessions", "--user", ALICE, "--yes", "--reason", "laptop stolen", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["revoked"] == 3 and out["complete"] is True and out["scope"] == "user"
    store = open_store(zt_env)
    assert store.count(ALICE) == 0 and store.count(BOB) == 2
    assert store.markers(ALICE)[0] == pytest.approx(out["marker_at"])
    last = audit_records(zt_env)[-1]
    assert (last["event"], last["action"], last["resource"], last["success"]) == ("session_revocation", "revoke", f"user:{ALICE}", True)
    assert last["details"]["revoked"] == 3 and last["details"]["reason"] == "laptop stolen"


def test_revoke_one_session(cli, zt_env, backend):
    made = seed(zt_env, {ALICE: 2})
    victim, keep = made[ALICE]
    r = cli("revoke-sessions", "--session", victim.id, "--yes")
    assert r.code == 0, r.err
    assert "Revoked 1 session" in r.text
    store = open_store(zt_env)
    assert store.get(victim.id) is None and store.get(keep.id) == keep
    assert audit_records(zt_env)[-1]["details"]["user_of_session"] == ALICE


def test_revoke_all(cli, zt_env, backend):
    seed(zt_env, {f"user{i}@EXAMPLE.COM": 15 for i in range(20)})
    r = cli("revoke-sessions", "--all", "--yes", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["revoked"] == 300
    store = open_store(zt_env)
    assert store.count() == 0
    before = make_session(ALICE, 3600, now=out["marker_at"] - 0.01)  # e.g. written by the broker during the run
    after = make_session(ALICE, 3600, now=time.time() + 0.01)
    assert store.is_revoked(before) and not store.is_revoked(after)
    assert audit_records(zt_env)[-1]["details"]["revoked"] == 300


def test_dry_run_changes_nothing(cli, zt_env, backend):
    seed(zt_env, {ALICE: 4, BOB: 1})
    n_audit = len(audit_records(zt_env)) if (Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").exists() else 0
    r = cli("revoke-sessions", "--all", "--dry-run")
    assert r.code == 0, r.err
    assert "Would revoke 5 session(s)" in r.text
    r = cli("revoke-sessions", "--user", ALICE, "--dry-run", "--json")
    assert json.loads(r.out)["revoked"] == 4 and json.loads(r.out)["dry_run"] is True
    store = open_store(zt_env)
    assert store.count() == 5 and store.markers(ALICE) == (None, None)
    assert (len(audit_records(zt_env)) if (Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").exists() else 0) == n_audit


def test_unknown_user_and_session_exit_3(cli, zt_env, backend):
    seed(zt_env, {ALICE: 1})
    r = cli("revoke-sessions", "--user", "nobody@EXAMPLE.COM", "--yes")
    assert r.code == 3, r.err
    assert r.err.count("error:") == 1 and "nobody@EXAMPLE.COM" in r.err
    r = cli("revoke-sessions", "--session", "doesNotExist123", "--yes")
    assert r.code == 3, r.err
    assert audit_records(zt_env)[-1]["success"] is False
    assert open_store(zt_env).count() == 1


def test_without_yes_and_without_tty_is_refused(cli, zt_env, backend):
    seed(zt_env, {ALICE: 2})
    r = cli("revoke-sessions", "--all")
    assert r.code == 2
    assert "--yes" in r.err
    assert open_store(zt_env).count() == 2


def test_exactly_one_scope(cli, zt_env):
    assert cli("revoke-sessions", "--all", "--user", ALICE, "--yes").code == 2
    assert cli("revoke-sessions", "--yes").code == 2
    assert cli("revoke-sessions", "--user", "bad user", "--yes").code == 2


def test_sessions_create_and_list(cli, zt_env, backend):
    r = cli("sessions", "create", "--user", ALICE, "--ttl", "2h", "--source-ip", "10.1.1.1", "--json")
    assert r.code == 0, r.err
    made = json.loads(r.out)
    assert made["expires"] - made["created"] == pytest.approx(7200)
    r = cli("sessions", "list", "--user", ALICE, "--json")
    listed = json.loads(r.out)
    assert [s["id"] for s in listed] == [made["id"]] and listed[0]["state"] == "active" and listed[0]["source_ip"] == "10.1.1.1"
    assert audit_records(zt_env)[-1]["event"] == "session_create"
    assert cli("sessions", "create", "--user", ALICE, "--ttl", "30d").code == 2
    assert cli("sessions", "create", "--user", ALICE, "--source-ip", "not-an-ip").code == 2


def test_session_created_during_revocation_is_refused(zt_env, redis_clean):
    write_user_config(zt_env, {"sessions": {"backend": "redis", "batch_size": 50}, "redis": {"url": redis_clean}})
    seed(zt_env, {f"u{i}@EXAMPLE.COM": 10 for i in range(30)})
    config = load_config(environ=zt_env)
    store = open_session_store(config)
    late = []

    def progress(n):
        if not late:  # the broker logs someone in while the revocation runs
            s = make_session(ALICE, 3600)
            store.put(s)
            late.append(s)

    report = revoke_sessions(store, Target("all"), config=config, audit=AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log"),
                             actor=current_actor(zt_env), progress=progress, notify=False)
    assert report.revoked >= 300
    assert store.is_revoked(late[0])


# --- faults ------------------------------------------------------------------
def test_redis_down_exit_6_bounded(cli, zt_env):
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "connect_timeout": 1}})
    start = time.monotonic()
    r = cli("revoke-sessions", "--user", ALICE, "--yes")
    assert r.code == 6, r.err
    assert time.monotonic() - start < 10
    assert r.err.startswith("zerotrust-admin: error: Redis at redis://127.0.0.1:") and "Traceback" not in r.err
    assert cli("sessions", "list").code == 6
    failed = audit_records(zt_env)[-1]
    assert failed["event"] == "session_revocation" and failed["success"] is False


def test_redis_password(cli, zt_env, tmp_path, redis_with_password):
    server = redis_with_password
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": server.url, "password_file": str(wrong)}})
    r = cli("sessions", "list")
    assert r.code == 4, r.err
    assert "refused the credentials" in r.err and "not-the-password" not in r.err
    # no password at all -> denied as well
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": server.url}})
    assert cli("sessions", "list").code == 4
    # the right one from the environment, then from the file
    r = cli("sessions", "create", "--user", ALICE, env={"ZEROTRUST_REDIS_PASSWORD": server.password})
    assert r.code == 0, r.err
    good = tmp_path / "good.pass"
    good.write_text(server.password + "\n")
    good.chmod(0o600)
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": server.url, "password_file": str(good)}})
    r = cli("revoke-sessions", "--user", ALICE, "--yes")
    assert r.code == 0, r.err
    assert server.password not in r.err + r.text


def test_redis_killed_mid_all_then_rerun_finishes(zt_env, tmp_path):
    port = free_port()
    server = RedisServer(port=port)
    persist = ["--appendonly", "yes", "--appendfsync", "always"]
    server.proc.kill()
    server.proc.wait()
    import subprocess
    import shutil

    def start():
        proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", server.dir, *persist],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from tests.servers import wait_port

        wait_port(port, proc=proc)
        return proc

    proc = start()
    try:
        write_user_config(zt_env, {"sessions": {"backend": "redis", "batch_size": 100}, "redis": {"url": f"redis://127.0.0.1:{port}/0", "connect_timeout": 1}})
        seed(zt_env, {f"u{i}@EXAMPLE.COM": 20 for i in range(50)})
        config = load_config(environ=zt_env)
        audit = AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log")
        store = open_session_store(config)
        seen = []

        def progress(n):
            seen.append(n)
            if len(seen) == 3:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

        with pytest.raises(InterruptedDeletion) as info:
            revoke_sessions(store, Target("all"), config=config, audit=audit, actor=current_actor(zt_env), progress=progress, notify=False)
        done = info.value.done
        assert 0 < done < 1000 and done == sum(seen)
        assert f"{done} sessions were deleted" in info.value.message and info.value.exit_code == 6
        rec = list(audit.records())[-1]
        assert rec["success"] is False and rec["details"]["revoked"] == done
        store.close()

        proc = start()
        store = open_session_store(config)
        assert store.count() == 1000 - done  # what was done stayed done
        # the dead run's lock survived in Redis; it lapses within its TTL (10 s)
        report = revoke_sessions(store, Target("all"), config=config, audit=audit, actor=current_actor(zt_env), notify=False, lock_wait=15)
        assert report.revoked == 1000 - done and store.count() == 0
        assert store.markers("u1@EXAMPLE.COM")[1] is not None
        store.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()


def test_all_is_refused_while_another_host_holds_the_lock(cli, zt_env, redis_clean):
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": redis_clean}})
    seed(zt_env, {ALICE: 2})
    with distributed_lock(load_config(environ=zt_env), "revoke-sessions", ttl=30):
        r = cli("revoke-sessions", "--all", "--yes")
    assert r.code == 7, r.err
    assert "held by" in r.err
    assert open_store(zt_env).count() == 2
    assert cli("revoke-sessions", "--all", "--yes").code == 0


def test_library_missing_ok_for_revoke_credentials(zt_env):
    config = load_config(environ=zt_env)
    store = open_session_store(config)
    audit = AuditLog(Path(zt_env["ZEROTRUST_HOME"]) / "audit.log")
    with pytest.raises(NotFoundError):
        revoke_sessions(store, Target("user", ALICE), config=config, audit=audit, actor=current_actor(zt_env), notify=False)
    report = revoke_sessions(store, Target("user", ALICE), config=config, audit=audit, actor=current_actor(zt_env), notify=False, missing_ok=True)
    assert report.revoked == 0 and store.markers(ALICE)[0] is not None


def test_generic_store_gets_before_and_after_markers(zt_env):
    """A store without the atomic per-user step: marker, deletion, marker again."""
    from zerotrust_admin.sessions.revoke import execute

    inner = open_store(zt_env)

    class Generic:
        def __getattr__(self, name):
            if name == "revoke_user_atomically":
                raise AttributeError(name)
            return getattr(inner, name)

    calls = []
    real_set = inner.set_marker
    inner.set_marker = lambda user, at: (calls.append(("marker", at)), real_set(user, at))
    real_delete = inner.delete_user
    inner.delete_user = lambda user: (calls.append(("delete", None)), real_delete(user))[1]
    seed(zt_env, {ALICE: 4})
    report = execute(Generic(), Target("user", ALICE))
    assert report.revoked == 4
    assert [c[0] for c in calls] == ["marker", "delete", "marker"]
    assert calls[0][1] <= calls[2][1] == report.marker_at
    assert inner.markers(ALICE)[0] == report.marker_at


def _run_on_tty(zt_env, args: list[str], answer: bytes, timeout: float = 60) -> tuple[int, str, bytes]:
    """Run the CLI with stdin and stderr on a pseudo-terminal; type ``answer`` at the prompt."""
    import pty
    import select
    import subprocess
    import sys

    from tests.conftest import ROOT

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "zerotrust_admin", *args], stdin=slave, stderr=slave, stdout=subprocess.PIPE,
                            env={**zt_env, "COLUMNS": "100", "TERM": "xterm"}, cwd=str(ROOT))
    os.close(slave)
    seen, sent = b"", False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if not sent and b"[y/N]" in seen:
                os.write(master, answer)
                sent = True
        elif proc.poll() is not None:
            break
    out = proc.stdout.read()
    code = proc.wait(10)
    os.close(master)
    return code, seen.decode(errors="replace"), out


def test_terminal_confirmation(zt_env):
    seed(zt_env, {ALICE: 3, BOB: 1})
    code, tty, _ = _run_on_tty(zt_env, ["revoke-sessions", "--all"], b"n\n")
    assert "Revoke ALL 4 sessions" in tty and code == 1
    assert open_store(zt_env).count() == 4
    code, tty, out = _run_on_tty(zt_env, ["revoke-sessions", "--user", ALICE], b"y\n")
    assert code == 0, tty
    assert f"Revoke 3 sessions of {ALICE}" in tty and b"Revoked 3 session(s)" in out
    assert open_store(zt_env).count() == 1


def test_progress_bar_only_on_a_terminal(cli, zt_env):
    seed(zt_env, {ALICE: 5})
    code, tty, out = _run_on_tty(zt_env, ["revoke-sessions", "--all"], b"y\n")
    assert code == 0, tty
    assert "revoking" in tty and b"Revoked 5 session(s)" in out
    seed(zt_env, {ALICE: 5})
    r = cli("revoke-sessions", "--all", "--yes")
    assert r.code == 0 and "revoking" not in r.err and "\x1b[" not in r.err


def test_redis_over_tls(cli, zt_env, redis_tls):
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": redis_tls.url, "tls": {"ca_file": str(redis_tls.ca)}}})
    assert cli("sessions", "create", "--user", ALICE).code == 0
    r = cli("revoke-sessions", "--user", ALICE, "--yes", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["revoked"] == 1 and json.loads(r.out)["store"].startswith("redis:rediss://127.0.0.1:")
    # the server's certificate is not trusted without the CA: refused, exit 6
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": redis_tls.url, "connect_timeout": 2}})
    r = cli("sessions", "list")
    assert r.code == 6 and "TLS handshake with Redis" in r.err
    # plain redis:// to a TLS port: refused as well, within the timeout
    write_user_config(zt_env, {"sessions": {"backend": "redis"}, "redis": {"url": redis_tls.url.replace("rediss://", "redis://"), "connect_timeout": 1, "socket_timeout": 1}})
    assert cli("sessions", "list").code == 6

"""The contract every secret-rotation kind passes, against its real system
(redis-server, PostgreSQL 15, moto's IAM/STS, a signed-webhook receiver):

- a rotation moves the vault secret to a new value that logs in; the previous
  value keeps working until ``retire`` (grace), then stops;
- a crash between any two steps (raised from the engine's checkpoint hook, the
  way a SIGKILL would stop it) leaves the current credential working, and the
  next run resumes from the recorded step and ends in the same clean state;
- a failed test rolls back: the vault secret is unchanged, the pending value
  does not log in;
- every step is audited, and no value is in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.servers import kerberos_realm, moto_server, redis_server, redis_server_process  # noqa: F401  (fixtures)
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.config.loader import load_config
from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.keys import KeySourceContext, open_source
from zerotrust_admin.keys.keyfile import KeyFileSource
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation import rotate_secrets, status
from zerotrust_admin.secret_rotation.base import RotationTestFailed
from zerotrust_admin.secret_rotation.state import read_state
from zerotrust_admin.timeutil import utcnow
from zerotrust_admin.vault import Vault

ACTOR = Actor(user="rotator@EXAMPLE.COM", source_ip="192.0.2.7", host="testhost")
NAME = "svc/cred"
GRACE = 3600
CRASH_POINTS = ["create:generated", "created", "apply:target", "applied", "tested", "finish:target", "finish:vault",
                "finished", "retire:target", "retired"]


class Crash(BaseException):
    """Stands for the process dying at that point (not an error the engine handles)."""


# --- per-kind harnesses ---------------------------------------------------------
class RedisHarness:
    kind = "redis"

    def __init__(self, request):
        self.server = request.getfixturevalue("redis_server_process")
        self.user = "app" + os.urandom(4).hex()
        self.admin_user = "ztadmin"
        self.admin_password = os.urandom(16).hex()
        c = self.server.client()
        c.execute_command("ACL", "SETUSER", self.admin_user, "on", ">" + self.admin_password, "~*", "&*", "+@all")
        self.initial = os.urandom(12).hex()
        c.execute_command("ACL", "SETUSER", self.user, "on", ">" + self.initial, "~app:*", "+@all")
        c.close()

    def target(self) -> dict:
        return {"url": self.server.url, "user": self.user, "admin_secret": "admin/redis", "admin_user": self.admin_user}

    def seed(self, vault) -> None:
        vault.put("admin/redis", self.admin_password.encode())
        vault.put(NAME, self.initial.encode())

    def works(self, value: bytes) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        c = redis.Redis(host="127.0.0.1", port=self.server.port, username=self.user, password=value.decode(), socket_timeout=5,
                        retry=Retry(NoBackoff(), 0))
        try:
            return bool(c.ping())
        except redis.exceptions.AuthenticationError:
            return False
        finally:
            c.close()

    def close(self) -> None:
        c = self.server.client()
        c.execute_command("ACL", "DELUSER", self.user)
        c.close()


class WebhookReceiver:
    """A consuming service: accepts a signed ``pending`` value, drops it on
    ``rollback``, drops the previous one on ``retire``; refuses bad signatures."""

    def __init__(self, key: bytes, initial: bytes):
        import http.server
        import threading

        self.key = key
        self.accepted = {hashlib.sha256(initial).hexdigest()[:16]: initial}
        self.refused = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ts = self.headers.get("X-ZeroTrust-Timestamp", "")
                expected = "v1=" + hmac.new(receiver.key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-ZeroTrust-Signature", "")):
                    receiver.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                msg = json.loads(body)
                if msg["event"] == "pending":
                    value = msg["value"].encode()
                    receiver.accepted[hashlib.sha256(value).hexdigest()[:16]] = value
                elif msg["event"] in ("retire", "rollback"):
                    receiver.accepted.pop(msg["fingerprint"], None)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RandomHarness:
    kind = "random"

    def __init__(self, request):
        self.key = os.urandom(32)
        self.initial = b"k" * 40
        self.receiver = WebhookReceiver(self.key, self.initial)

    def target(self) -> dict:
        return {"length": 40, "alphabet": "alnum", "webhook_url": f"http://127.0.0.1:{self.receiver.server.server_address[1]}/rotate",
                "webhook_secret": "hooks/key"}

    def seed(self, vault) -> None:
        vault.put("hooks/key", self.key)
        vault.put(NAME, self.initial)

    def works(self, value: bytes) -> bool:
        return value in self.receiver.accepted.values()

    def close(self) -> None:
        assert self.receiver.refused == 0
        self.receiver.close()


class PostgresHarness:
    """A login role on the real PostgreSQL 15; alternating users (zero downtime)."""

    kind = "postgres"
    strategy = "alternating"
    keeps_previous = True

    def __init__(self, request):
        self.server = request.getfixturevalue("postgres_server")
        self.user = "app_" + os.urandom(4).hex()
        self.initial = os.urandom(12).hex()
        c = self.server.connect()
        c.execute(f'CREATE ROLE "{self.user}" LOGIN PASSWORD %s'.replace("%s", "'" + self.initial + "'"))
        c.close()

    def target(self) -> dict:
        return {"host": "127.0.0.1", "port": self.server.port, "user": self.user, "admin_secret": "admin/pg",
                "admin_user": "postgres", "strategy": self.strategy, "sslmode": "disable"}

    def seed(self, vault) -> None:
        vault.put("admin/pg", self.server.password.encode())
        vault.put(NAME, json.dumps({"username": self.user, "password": self.initial}).encode())

    def works(self, value: bytes) -> bool:
        import psycopg

        cred = json.loads(value)
        try:
            self.server.connect(cred["username"], cred["password"]).close()
            return True
        except psycopg.OperationalError:
            return False

    def close(self) -> None:
        c = self.server.connect()
        for role in (f"{self.user}_clone", self.user):
            c.execute(f'DROP ROLE IF EXISTS "{role}"')
        c.close()


class PostgresSingleHarness(PostgresHarness):
    """One role: the previous password stops at apply (documented), everything else holds."""

    strategy = "single"
    keeps_previous = False


class AwsIamHarness:
    """An IAM user's access key on moto's IAM + STS. moto does not refuse an
    inactive key itself, so "works" is STS saying it is that user AND IAM listing
    the key as Active."""

    kind = "aws-iam"

    def __init__(self, request):
        self.moto = request.getfixturevalue("moto_server")
        self.iam = self.moto.client("iam")
        self.user = "deploy-" + os.urandom(4).hex()
        self.iam.create_user(UserName="rotation-admin-" + self.user)
        admin = self.iam.create_access_key(UserName="rotation-admin-" + self.user)["AccessKey"]
        self.admin = {"AccessKeyId": admin["AccessKeyId"], "SecretAccessKey": admin["SecretAccessKey"]}
        self.iam.create_user(UserName=self.user)
        key = self.iam.create_access_key(UserName=self.user)["AccessKey"]
        self.initial = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}

    def target(self) -> dict:
        return {"user": self.user, "admin_secret": "admin/aws", "region": self.moto.REGION, "endpoint_url": self.moto.endpoint_url}

    def seed(self, vault) -> None:
        vault.put("admin/aws", json.dumps(self.admin).encode())
        vault.put(NAME, json.dumps(self.initial).encode())

    def works(self, value: bytes) -> bool:
        import boto3

        cred = json.loads(value)
        active = {k["AccessKeyId"] for k in self.iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"] if k["Status"] == "Active"}
        if cred["AccessKeyId"] not in active:
            return False
        sts = boto3.client("sts", region_name=self.moto.REGION, endpoint_url=self.moto.endpoint_url,
                           aws_access_key_id=cred["AccessKeyId"], aws_secret_access_key=cred["SecretAccessKey"])
        return sts.get_caller_identity()["Arn"].endswith(f":user/{self.user}")

    def check_clean(self, current: bytes) -> None:
        """No key nobody holds: the current key, and at most the deactivated previous one."""
        keys = self.iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"]
        assert [k["AccessKeyId"] for k in keys if k["Status"] == "Active"] == [json.loads(current)["AccessKeyId"]]
        assert len(keys) <= 2

    def close(self) -> None:
        pass


class TlsHarness:
    """A certificate from a CA held in the vault. "works" is a real TLS handshake:
    a loopback server presents the bundle, a client verifies it against the CA for
    the common name. The previous certificate stays valid until its own expiry
    (retire revokes nothing: documented)."""

    kind = "tls"
    retire_removes_previous = False

    def __init__(self, request):
        from datetime import timedelta as td

        from zerotrust_admin.crypto import x509

        self.dir = request.getfixturevalue("tmp_path") / "tls"
        self.dir.mkdir()
        self.ca_key, self.ca_cert = x509.self_signed_ca("Contract Test CA")
        key = x509.generate_key()
        self.initial = key + x509.issue(self.ca_key, self.ca_cert, key, "svc.test", ["svc.test"], td(days=30)) + self.ca_cert

    def target(self) -> dict:
        return {"ca_secret": "pki/ca", "common_name": "svc.test", "sans": ["svc.test", "127.0.0.1"], "lifetime": "30d"}

    def seed(self, vault) -> None:
        vault.put("pki/ca", self.ca_key + self.ca_cert)
        vault.put(NAME, self.initial)

    def works(self, value: bytes) -> bool:
        import socket
        import ssl
        import threading

        from zerotrust_admin.crypto import x509

        parts = x509.split_pem(value)
        bundle = self.dir / f"b{os.urandom(4).hex()}.pem"
        bundle.write_bytes(parts["cert"][0] + parts["key"][0])
        (self.dir / "ca.pem").write_bytes(self.ca_cert)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(bundle)
        bundle.unlink()
        client_ctx = ssl.create_default_context(cafile=str(self.dir / "ca.pem"))
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def serve():
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname="svc.test") as tls:
                tls.sendall(b"x")
            return True
        except ssl.SSLError:
            return False
        finally:
            t.join(5)
            listener.close()

    def close(self) -> None:
        pass


class KeytabHarness:
    """A service principal's keytab on the real MIT KDC (kadmin.local). "works" is
    `kinit -k -t` with the keytab. The old keytab stops at apply (the KDC's key
    changed: documented); the new keytab keeps the previous kvno until retire,
    which writes one more version. A failure after apply rolls forward."""

    kind = "keytab"
    keeps_previous = False
    versions_after = 3
    rolls_forward = True

    def __init__(self, request):
        self.realm = request.getfixturevalue("kerberos_realm")
        self.dir = request.getfixturevalue("tmp_path") / "krb"
        self.dir.mkdir()
        self.principal = f"svc{os.urandom(3).hex()}/app.test@{self.realm.REALM}"
        path = self.realm.add_keytab(self.principal, self.dir / "initial.keytab")
        self.initial = path.read_bytes()
        path.unlink()

    def target(self) -> dict:
        return {"principal": self.principal, "krb5_config": self.realm.env["KRB5_CONFIG"], "kdc_profile": self.realm.env["KRB5_KDC_PROFILE"]}

    def seed(self, vault) -> None:
        vault.put(NAME, self.initial)

    def works(self, value: bytes) -> bool:
        import subprocess

        path = self.dir / f"k{os.urandom(4).hex()}.keytab"
        path.write_bytes(value)
        try:
            return subprocess.run(["kinit", "-k", "-t", str(path), "-c", "MEMORY:t", self.principal], env=self.realm.env,
                                  capture_output=True, timeout=30).returncode == 0
        finally:
            path.unlink()

    def close(self) -> None:
        pass


HARNESSES = {"keytab": KeytabHarness, "tls": TlsHarness, "aws-iam": AwsIamHarness, "redis": RedisHarness, "random": RandomHarness, "postgres": PostgresHarness, "postgres-single": PostgresSingleHarness}


# --- the installation ----------------------------------------------------------
class Setup:
    def __init__(self, tmp_path: Path, harness):
        self.home = tmp_path / "home"
        self.harness = harness
        ctx = KeySourceContext(config={}, home=self.home, environ={})
        self.vault = Vault.create(self.home / "vault.db", "keyfile", lambda key_id: KeyFileSource.create(ctx, key_id),
                                  audit=AuditLog(self.home / "audit.log"), actor=ACTOR)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({"secret_rotation": [
            {"secret": NAME, "kind": harness.kind, "every": "30d", "grace": f"{GRACE}s", "target": harness.target()}]}))
        os.chmod(cfg, 0o600)
        self.config = load_config(str(cfg), environ={"ZEROTRUST_HOME": str(self.home)})
        harness.seed(self.vault)

    def reopen(self) -> None:
        self.vault.close()
        ctx = KeySourceContext(config={}, home=self.home, environ={})
        self.vault = Vault.open(self.home / "vault.db", lambda kind, params: open_source(kind, ctx, params),
                                audit=AuditLog(self.home / "audit.log"), actor=ACTOR)

    def current(self) -> bytes:
        value, _ = self.vault.get(NAME)
        return value.reveal()

    def run(self, *, later: float = 0.0, force: bool = False, checkpoint=None) -> dict:
        return rotate_secrets(self.vault, self.config, names=[NAME] if force else None, now=utcnow() + timedelta(seconds=later),
                              checkpoint=checkpoint)

    def audit_text(self) -> str:
        return (self.home / "audit.log").read_text()


@pytest.fixture(params=sorted(HARNESSES))
def setup(request, tmp_path):
    harness = HARNESSES[request.param](request)
    s = Setup(tmp_path, harness)
    yield s
    s.vault.close()
    harness.close()


def _crash_at(point: str, hits: list):
    def checkpoint(step: str) -> None:
        hits.append(step)
        if step == point:
            raise Crash(point)
    return checkpoint


# --- the contract ----------------------------------------------------------------
def test_rotation_keeps_previous_until_retire(setup):
    h = setup.harness
    old = setup.current()
    assert h.works(old)
    result = setup.run(force=True)
    assert result["results"][0]["result"] == "done", result
    new = setup.current()
    assert new != old and h.works(new)
    assert h.works(old) == getattr(h, "keeps_previous", True), "the previous credential works during the grace period"
    state = read_state(setup.vault, NAME)
    assert state.step == "finished"
    _secret, info = setup.vault.get(NAME)
    assert info.metadata["rotation.stage"] == "current" and info.metadata["rotation.previous_version"] == "1"
    assert setup.run()["nothing_due"], "in grace, nothing is due"
    result = setup.run(later=GRACE + 1)
    assert [r["action"] for r in result["results"]] == ["retire"]
    assert h.works(old) != getattr(h, "retire_removes_previous", True) and h.works(new)
    assert read_state(setup.vault, NAME).step == "retired"
    assert setup.run(later=GRACE + 2)["nothing_due"]
    log = setup.audit_text()
    steps = [json.loads(line)["details"]["step"] for line in log.splitlines()
             if line.strip() and json.loads(line).get("event") == "secret_rotation"]
    from zerotrust_admin.secret_rotation.registry import rotator_class

    creating = ["creating"] if rotator_class(h.kind).creates_in_target else []
    assert steps == creating + ["created", "applied", "tested", "finished", "retired"]
    for value in (old, new):
        assert value.decode("latin-1") not in log


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_between_steps_then_resume(setup, point):
    h = setup.harness
    old = setup.current()
    hits: list = []
    with pytest.raises(Crash):
        if point.startswith("retire"):
            setup.run(force=True)
            setup.run(later=GRACE + 1, checkpoint=_crash_at(point, hits))
        else:
            setup.run(force=True, checkpoint=_crash_at(point, hits))
    setup.reopen()
    # The credential consumers read from the vault works at the moment of the crash
    # (postgres single: not between apply and finish, the documented window).
    if getattr(h, "keeps_previous", True) or point not in ("apply:target", "applied", "tested", "finish:target"):
        assert h.works(setup.current())
    if point in ("create:generated", "created", "apply:target", "applied", "tested", "finish:target"):
        assert setup.current() == old
    # The next run resumes from the recorded step and finishes (cron: no --secret); a crash
    # before the first record left nothing to resume: the operator's re-run starts afresh.
    setup.run(later=GRACE + 1, force=read_state(setup.vault, NAME) is None)
    setup.run(later=GRACE + 1)
    assert read_state(setup.vault, NAME).step == "retired"
    new = setup.current()
    assert new != old and h.works(new) and h.works(old) != getattr(h, "retire_removes_previous", True)
    versions = setup.vault.history(NAME)
    assert len(versions) == getattr(h, "versions_after", 2), "exactly one new version (keytab: and its retired form), whatever the crash"
    if hasattr(h, "check_clean"):
        h.check_clean(new)
    assert setup.run(later=GRACE + 2)["nothing_due"]


def test_failed_test_rolls_back(setup, monkeypatch):
    h = setup.harness
    old = setup.current()
    from zerotrust_admin.secret_rotation import registry

    cls = registry.rotator_class(h.kind)

    def refuse(self, pending):
        raise RotationTestFailed("the new credential does not log in")

    monkeypatch.setattr(cls, "test", refuse)
    result = setup.run(force=True)
    assert result["results"][0]["result"] == "failed" and result["failed"] == 1
    if getattr(h, "rolls_forward", False):
        # keytab: the KDC already holds the new keys; the step stays recorded and the next run rolls forward.
        assert setup.current() == old
        state = read_state(setup.vault, NAME)
        assert state.step == "applied" and state.meta["result"] == "failed:RotationTestFailed"
        monkeypatch.undo()
        assert setup.run()["results"][0]["action"] == "resume"
        assert h.works(setup.current()) and setup.current() != old
        return
    assert setup.current() == old and h.works(old)
    state = read_state(setup.vault, NAME)
    assert state.step == "rolled_back" and state.meta["failed_step"] == "test"
    pending, _ = setup.vault.get(f"_zerotrust/rotation/{NAME}")
    pending_works = h.works(pending.reveal())  # (not inside the assert: pytest would print the value)
    assert pending_works != getattr(h, "retire_removes_previous", True), "the rolled-back value does not log in (tls: revokes nothing)"
    row = status(setup.vault, setup.config)[0]
    assert row["last_result"] == "failed:RotationTestFailed at test"
    monkeypatch.undo()
    assert setup.run(force=True)["results"][0]["result"] == "done"
    assert h.works(setup.current()) and setup.current() != old


def test_a_soft_deleted_secret_is_not_rotated_nor_undeleted(setup):
    setup.vault.delete(NAME)
    result = setup.run(force=True)
    assert result["nothing_due"] and result["plan"][0]["reason"].startswith("deleted in the vault")
    assert status(setup.vault, setup.config)[0]["stage"] == "deleted"
    assert setup.vault.info(NAME).deleted_at is not None


def test_first_rotation_without_a_value_in_the_vault(setup):
    setup.vault.destroy(NAME)
    with pytest.raises(NotFoundError):
        setup.vault.get(NAME)
    assert not setup.run()["nothing_due"], "a managed secret with no value is due"
    assert setup.harness.works(setup.current())


CHILD = r"""
import os, signal, sys
from pathlib import Path
from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.config.loader import load_config
from zerotrust_admin.keys import KeySourceContext, open_source
from zerotrust_admin.secret_rotation import rotate_secrets
from zerotrust_admin.vault import Vault

home, cfg, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = KeySourceContext(config={}, home=home, environ={})
vault = Vault.open(home / "vault.db", lambda kind, params: open_source(kind, ctx, params), audit=AuditLog(home / "audit.log"),
                   actor=Actor(user="rotator@EXAMPLE.COM", source_ip="192.0.2.7", host="testhost"))
config = load_config(cfg, environ={"ZEROTRUST_HOME": str(home)})

def checkpoint(step):
    if step == point:
        os.kill(os.getpid(), signal.SIGKILL)

rotate_secrets(vault, config, names=["svc/cred"], checkpoint=checkpoint)
"""


@pytest.mark.parametrize("point", ["apply:target", "tested", "finish:vault"])
def test_sigkill_mid_rotation_then_the_next_run_resumes(request, tmp_path, point):
    """A real SIGKILL (no finally blocks, the lock dies with the process) of a redis rotation."""
    import subprocess
    import sys

    h = RedisHarness(request)
    s = Setup(tmp_path, h)
    try:
        old = s.current()
        s.vault.close()
        child = subprocess.run([sys.executable, "-c", CHILD, str(s.home), str(tmp_path / "config.yaml"), point],
                               capture_output=True, timeout=60, cwd=str(Path(__file__).resolve().parent.parent))
        assert child.returncode == -9, child.stderr
        s.reopen()
        assert h.works(s.current()) and h.works(old)
        result = s.run()  # cron: no --secret; the lock is free again
        assert result["results"][0]["action"] == "resume" and result["results"][0]["result"] == "done"
        new = s.current()
        assert new != old and h.works(new) and h.works(old)
        s.run(later=GRACE + 1)
        assert not h.works(old) and h.works(new)
    finally:
        s.vault.close()
        h.close()


def test_tls_is_due_at_two_thirds_of_the_lifetime(request, tmp_path):
    """`every` left out: a 30-day certificate is due after 20 days; status shows its expiry."""
    from zerotrust_admin.secret_rotation.engine import plan
    from zerotrust_admin.secret_rotation.config import load_managed

    h = TlsHarness(request)
    s = Setup(tmp_path, h)
    try:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({"secret_rotation": [{"secret": NAME, "kind": "tls", "grace": "1h", "target": h.target()}]}))
        s.config = load_config(str(cfg), environ={"ZEROTRUST_HOME": str(s.home)})
        entries = load_managed(s.config)
        assert [p.action for p in plan(s.vault, entries, force=set(), now=utcnow() + timedelta(days=19))] == ["none"]
        assert [p.action for p in plan(s.vault, entries, force=set(), now=utcnow() + timedelta(days=21))] == ["rotate"]
        row = status(s.vault, s.config)[0]
        assert row["expires"][:10] == (utcnow() + timedelta(days=30)).isoformat()[:10] and row["expired"] is False
        result = s.run(later=21 * 86400)
        assert result["results"][0]["result"] == "done"
        _value, info = s.vault.get(NAME)
        assert info.metadata["tls.subject"] == "CN=svc.test" and "tls.not_after" in info.metadata
        s.run(later=2 * 3600)  # the retire run after the grace
        # The renewed certificate's schedule comes from its authenticated metadata.
        assert [p.action for p in plan(s.vault, entries, force=set(), now=utcnow() + timedelta(days=19))] == ["none"]
        assert [p.action for p in plan(s.vault, entries, force=set(), now=utcnow() + timedelta(days=21))] == ["rotate"]
        assert h.works(s.current())
    finally:
        s.vault.close()


def test_keytab_keeps_the_previous_kvno_until_retire_and_resumes_a_crash_there(request, tmp_path):
    from zerotrust_admin.secret_rotation.keytab_kind import keytab_entries

    h = KeytabHarness(request)
    s = Setup(tmp_path, h)
    try:
        old_kvnos = {k for k, _ in keytab_entries(s.current())}
        s.run(force=True)
        both = {k for k, _ in keytab_entries(s.current())}
        assert old_kvnos < both and len(both) == 2, "the new keytab holds the previous kvno and the new one"
        with pytest.raises(Crash):
            s.run(later=GRACE + 1, checkpoint=_crash_at("retire:vault", []))
        s.reopen()
        s.run(later=GRACE + 1)
        assert {k for k, _ in keytab_entries(s.current())} == both - old_kvnos
        assert h.works(s.current()) and read_state(s.vault, NAME).step == "retired"
        assert len(s.vault.history(NAME)) == 3
    finally:
        s.vault.close()


def test_a_failed_create_is_audited_and_changes_nothing(request, tmp_path):
    """aws-iam creates the key at create_pending: an unknown active key of the user is refused, audited."""
    h = AwsIamHarness(request)
    s = Setup(tmp_path, h)
    try:
        h.iam.create_access_key(UserName=h.user)  # an operator's second key, not in the vault: never deleted
        time.sleep(1.1)  # (IAM dates have whole seconds)
        result = s.run(force=True)
        assert result["results"][0]["result"] == "failed" and result["results"][0]["error"] == "UsageError"
        failures = [json.loads(line) for line in s.audit_text().splitlines() if '"secret_rotation"' in line]
        assert [(r["details"]["step"], r["success"], r["details"].get("error")) for r in failures] == \
            [("creating", True, None), ("created", False, "UsageError")]
        assert read_state(s.vault, NAME).step == "creating" and len(h.iam.list_access_keys(UserName=h.user)["AccessKeyMetadata"]) == 2
        # Resumed (cron), the operator's key is still refused, still not deleted.
        assert s.run()["results"][0]["error"] == "UsageError"
        assert len(h.iam.list_access_keys(UserName=h.user)["AccessKeyMetadata"]) == 2
    finally:
        s.vault.close()


def test_aws_iam_crash_after_the_creating_record_then_resume(request, tmp_path):
    """The `creating` record is written before IAM is asked: a crash right after it resumes cleanly."""
    h = AwsIamHarness(request)
    s = Setup(tmp_path, h)
    try:
        old = s.current()
        with pytest.raises(Crash):
            s.run(force=True, checkpoint=_crash_at("creating", []))
        s.reopen()
        assert read_state(s.vault, NAME).step == "creating" and h.works(old)
        assert s.run()["results"][0]["action"] == "resume"
        assert h.works(s.current()) and s.current() != old
        s.run(later=GRACE + 1)
        h.check_clean(s.current())
    finally:
        s.vault.close()

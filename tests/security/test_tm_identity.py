"""Threat-model rows I1 (identity proven with the real KDC, or said to be
claimed) and F2 (principals with control characters refused at resolution).

The attacker (a) runs the CLI with an environment they choose: they write a
ccache by hand (any principal, valid until 2100), edit a real one, set
ZEROTRUST_PRINCIPAL or SSH_CLIENT. A real MIT KDC (tests/servers.py::KerberosRealm)
issues the real tickets; the host service key is in a keytab made with
``kadmin.local ktadd -k``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import free_port, kerberos_realm  # noqa: F401  (fixture)
from zerotrust_admin import identity
from zerotrust_admin.identity import os_user

OS_USER = f"{os_user()}@{socket.gethostname()}"
SERVICE = "host/zt-host.zt.test"
END_2100 = 4102444800


@pytest.fixture(scope="module")
def host(kerberos_realm, tmp_path_factory):
    """The host service's keytab, plus carol (a real user whose name is as long as alice's)."""
    d = tmp_path_factory.mktemp("host")
    keytab = kerberos_realm.add_keytab(SERVICE, d / "krb5.keytab")
    kerberos_realm.carol_password = "carol-" + os.urandom(6).hex()
    kerberos_realm.add_principal("carol", kerberos_realm.carol_password)
    return keytab


def write_config(path: Path, realm, keytab: Path | None, *, verify="kdc", require=False, krb5_config=None, timeout=5) -> Path:
    block = {"verify": verify, "require": require, "timeout_seconds": timeout,
             "service": SERVICE, "krb5_config": str(krb5_config or realm.dir / "krb5.conf")}
    if keytab is not None:
        block["keytab"] = str(keytab)
    path.write_text(json.dumps({"security": {"identity": block}}))  # JSON is YAML
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def run(zt_env, initialized):
    """The CLI without ZEROTRUST_PRINCIPAL, with the ccache and config given."""

    def go(*args, ccache=None, config=None, extra=None, input=b"value", timeout=60):
        env = {k: v for k, v in zt_env.items() if k not in ("ZEROTRUST_PRINCIPAL", "KRB5CCNAME")}
        env["KRB5CCNAME"] = f"FILE:{ccache}" if ccache else f"FILE:{initialized / 'no-ccache'}"
        if config:
            env["ZEROTRUST_CONFIG"] = str(config)
        env.update(extra or {})
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], env=env, capture_output=True,
                              input=input, cwd=str(ROOT), timeout=timeout)
        go.seconds = time.monotonic() - started
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode("utf-8", "replace")

    return go


def audit_records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines() if line.strip()]


def principal_bytes(name: str, realm: str) -> bytes:
    name, _, at_realm = name.partition("@")
    realm = at_realm or realm
    parts = name.split("/")
    out = struct.pack(">II", 1, len(parts)) + struct.pack(">I", len(realm)) + realm.encode()
    for p in parts:
        out += struct.pack(">I", len(p.encode())) + p.encode()
    return out


def forged_ccache(principal: str, realm: str = "ZT.TEST", ticket: bytes | None = None) -> bytes:
    """A v4 FILE ccache written by hand: ``principal`` and one TGT valid until 2100."""
    now = int(time.time())
    cred = principal_bytes(principal, realm) + principal_bytes(f"krbtgt/{realm}", realm)
    cred += struct.pack(">H", 18) + struct.pack(">I", 32) + os.urandom(32)  # aes256 session key
    cred += struct.pack(">IIII", now, now, END_2100, END_2100) + b"\x00" + struct.pack(">I", 0x40e10000)
    cred += struct.pack(">II", 0, 0)  # no addresses, no authdata
    ticket = ticket if ticket is not None else os.urandom(300)
    cred += struct.pack(">I", len(ticket)) + ticket + struct.pack(">I", 0)
    return b"\x05\x04" + struct.pack(">H", 0) + principal_bytes(principal, realm) + cred


def tgs_requests(realm) -> int:
    log = realm.dir / "kdc.log"
    return sum(1 for line in log.read_text(errors="replace").splitlines() if "TGS_REQ" in line and SERVICE in line) if log.exists() else 0


# --- I1: verified with the real KDC --------------------------------------------------
def test_i1_real_ticket_verified_and_audited(kerberos_realm, host, tmp_path, run, initialized):
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    before = tgs_requests(kerberos_realm)
    code, _out, err = run("--verbose", "vault", "put", "i1/verified", ccache=cc, config=config)
    assert code == 0, err
    assert "identity: alice@ZT.TEST (Kerberos ticket in" in err and "verified for host/zt-host.zt.test" in err
    assert tgs_requests(kerberos_realm) == before + 1  # one real TGS exchange per command
    last = audit_records(initialized)[-1]
    assert last["user"] == "alice@ZT.TEST" and last["resource"] == "i1/verified"
    assert last["identity"] == "verified"
    code, out, err = run("--json", "access", "check", "i1/verified", "-a", "read", ccache=cc, config=config)
    assert code == 0, err
    assert json.loads(out)["identity"]["assurance"] == "verified"


def test_i1_service_account_keytab_ticket_is_verified(kerberos_realm, host, tmp_path, run, initialized):
    """Cron under require: true: its own keytab, kinit -k -t, then the same verification."""
    svc_keytab = kerberos_realm.add_keytab("svc-rotate", tmp_path / "svc.keytab")
    cc = kerberos_realm.kinit_keytab("svc-rotate", svc_keytab, tmp_path / "svc.cc")
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    code, _out, err = run("vault", "put", "i1/cron", ccache=cc, config=config)
    assert code == 0, err
    last = audit_records(initialized)[-1]
    assert (last["user"], last.get("identity")) == ("svc-rotate@ZT.TEST", "verified")


def test_i1_forged_ccache_refused_when_required(kerberos_realm, host, tmp_path, run, initialized):
    forged = tmp_path / "forged"
    forged.write_bytes(forged_ccache("admin@ZT.TEST"))
    # The forgery is good enough to fool the parser: it claims admin until 2100.
    assert identity.ccache_info({"KRB5CCNAME": f"FILE:{forged}"}).usable
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    records = len(audit_records(initialized))
    code, out, err = run("vault", "put", "i1/forged", ccache=forged, config=config)
    assert code == 4, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("zerotrust-admin: error: the Kerberos ticket for admin@ZT.TEST") and "failed verification with the KDC" in lines[0]
    assert len(lines) <= 2 and "Traceback" not in err
    assert len(audit_records(initialized)) == records  # nothing was written as anyone


def test_i1_forged_ccache_falls_back_to_os_user(kerberos_realm, host, tmp_path, run, initialized):
    forged = tmp_path / "forged"
    forged.write_bytes(forged_ccache("admin@ZT.TEST"))
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=False)
    code, _out, err = run("vault", "put", "i1/fallback", ccache=forged, config=config)
    assert code == 0, err
    assert "warning" in err and "failed verification with the KDC" in err and f"acting as {OS_USER}" in err
    last = audit_records(initialized)[-1]
    assert last["resource"] == "i1/fallback"
    assert last["user"] == OS_USER and last.get("identity") == "os"
    assert "admin@ZT.TEST" not in (initialized / "audit.log").read_text()


def test_i1_edited_real_ccache_refused(kerberos_realm, host, tmp_path, run, initialized):
    """carol's real cache, with a real service ticket for the host in it, renamed to
    alice. ``kvno -k`` alone accepts it (it finds the cached ticket by its plain-text
    client name and only checks that the keytab decrypts it); the tool does not."""
    real = kerberos_realm.kinit("carol", kerberos_realm.carol_password, tmp_path / "carol")
    krb_env = {"PATH": "/usr/bin:/bin", "KRB5_CONFIG": str(kerberos_realm.dir / "krb5.conf")}
    subprocess.run(["kvno", "-c", f"FILE:{real}", SERVICE], env=krb_env, check=True, capture_output=True)  # caches the service ticket
    edited = tmp_path / "edited"
    edited.write_bytes(real.read_bytes().replace(b"carol", b"alice"))
    plain = subprocess.run(["kvno", "-c", f"FILE:{edited}", "-k", str(host), SERVICE], env=krb_env, capture_output=True, text=True)
    assert plain.returncode == 0 and "keytab entry valid" in plain.stdout, "kvno alone no longer accepts the edited cache"
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    code, _out, err = run("vault", "put", "i1/edited", ccache=edited, config=config)
    assert code == 4, err
    assert "the Kerberos ticket for alice@ZT.TEST" in err and "failed verification" in err
    # The same cache under its real name verifies: the refusal is about the name.
    code, _out, err = run("vault", "put", "i1/carol", ccache=real, config=config)
    assert code == 0, err
    assert audit_records(initialized)[-1]["user"] == "carol@ZT.TEST"


def test_i1_ticket_from_an_unknown_realm_refused(kerberos_realm, host, tmp_path, run, initialized):
    forged = tmp_path / "forged"
    forged.write_bytes(forged_ccache("alice@EVIL.TEST"))
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    code, _out, err = run("vault", "put", "i1/evil", ccache=forged, config=config)
    assert code == 4, err
    assert "the Kerberos ticket for alice@EVIL.TEST" in err and "failed verification" in err


def test_i1_genuine_tgt_under_another_name_refused(kerberos_realm, host, tmp_path, run, initialized):
    """A hand-written cache that carries carol's genuine TGT bytes under the name admin."""
    real = kerberos_realm.kinit("carol", kerberos_realm.carol_password, tmp_path / "carol")
    _, creds = identity._walk_ccache(real.read_bytes())
    tgt = next(c for c in creds if c.server_components[:1] == [b"krbtgt"])
    forged = tmp_path / "forged"
    forged.write_bytes(forged_ccache("admin@ZT.TEST", ticket=tgt.ticket))
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    code, _out, err = run("vault", "put", "i1/reused", ccache=forged, config=config)
    assert code == 4, err


def test_i1_verify_none_says_claimed(kerberos_realm, tmp_path, run, initialized):
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    code, _out, err = run("--verbose", "vault", "put", "i1/claimed", ccache=cc, extra={"SSH_CLIENT": "203.0.113.9 4711 22"})
    assert code == 0, err
    assert "claimed: not verified" in err and "source address: 203.0.113.9 (from SSH_CLIENT, claimed)" in err
    last = audit_records(initialized)[-1]
    assert (last["user"], last.get("identity")) == ("alice@ZT.TEST", "claimed")
    code, _out, err = run("vault", "put", "i1/env", extra={"ZEROTRUST_PRINCIPAL": "svc@ZT.TEST"})
    assert code == 0 and audit_records(initialized)[-1].get("identity") == "claimed"
    code, _out, err = run("vault", "put", "i1/os")
    last = audit_records(initialized)[-1]
    assert code == 0 and (last["user"], last.get("identity")) == (OS_USER, "os")
    # access check says so, in text and JSON.
    code, out, err = run("access", "check", "i1/claimed", "-a", "read", ccache=cc, extra={"SSH_CLIENT": "203.0.113.9 4711 22"})
    assert code == 0, err
    assert "identity: claimed" in out and "source address: claimed (from SSH_CLIENT)" in out
    code, out, err = run("--json", "access", "check", "i1/claimed", "-a", "read", ccache=cc, extra={"SSH_CLIENT": "203.0.113.9 4711 22"})
    doc = json.loads(out)
    assert doc["identity"]["assurance"] == "claimed" and doc["identity"]["source"] == "kerberos"
    assert doc["source_ip_origin"] == {"source": "SSH_CLIENT", "assurance": "claimed"}


def test_i1_claims_refused_when_required(kerberos_realm, host, tmp_path, run, initialized):
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    code, _out, err = run("vault", "put", "i1/env", config=config, extra={"ZEROTRUST_PRINCIPAL": "alice@ZT.TEST"})
    assert code == 4 and "ZEROTRUST_PRINCIPAL is a claim" in err
    code, _out, err = run("vault", "put", "i1/none", config=config)
    assert code == 4 and "no verified Kerberos identity" in err
    assert not any(r.get("resource", "").startswith("i1/") for r in audit_records(initialized))
    # require without verify would accept a claim: refused as a configuration error.
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, verify="none", require=True)
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    code, _out, err = run("vault", "put", "i1/noverify", ccache=cc, config=config)
    assert code == 2 and "require: true needs verify: kdc" in err


def silent_kdc() -> tuple[socket.socket, int]:
    """A TCP port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list = []

    def accept():
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("kdc", ["stopped", "silent"])
def test_i1_kdc_down_is_bounded(kdc, kerberos_realm, host, tmp_path, run, initialized):
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    listener = None
    if kdc == "silent":
        listener, port = silent_kdc()
    else:
        port = free_port()  # nothing listens there: a stopped KDC
    conf = tmp_path / "krb5.conf"
    conf.write_text((kerberos_realm.dir / "krb5.conf").read_text().replace(f":{kerberos_realm.port}", f":{port}"))
    try:
        config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True, krb5_config=conf, timeout=1)
        code, _out, err = run("vault", "put", "i1/down", ccache=cc, config=config)
        assert code == 6, err
        assert "could not be verified" in err
        assert run.seconds < 8, f"took {run.seconds:.1f} s with timeout_seconds: 1"
        print(f"\nKDC {kdc}: exit 6 after {run.seconds:.2f} s (whole command, timeout_seconds: 1)")
        config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=False, krb5_config=conf, timeout=1)
        code, _out, err = run("vault", "put", "i1/down", ccache=cc, config=config)
        assert code == 0, err
        assert "could not be verified" in err and f"acting as {OS_USER}" in err
        assert audit_records(initialized)[-1]["user"] == OS_USER
    finally:
        if listener is not None:
            listener.close()


def test_i1_verification_cost_measured(kerberos_realm, host, tmp_path):
    """The KDC round trip, as the library does it once per command (docs/security-model.md)."""
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    settings = identity.IdentitySettings(verify="kdc", keytab=str(host), service=SERVICE, krb5_config=str(kerberos_realm.dir / "krb5.conf"))
    times = []
    for _ in range(10):
        who = identity.resolve({"KRB5CCNAME": f"FILE:{cc}"}, settings=settings)
        assert who.assurance == "verified"
        times.append(who.verify_ms)
    times.sort()
    print(f"\nKDC verification: median {times[5]:.1f} ms, max {times[-1]:.1f} ms over 10 runs")
    assert times[5] < 1000


def test_i1_world_readable_keytab_proves_nothing(kerberos_realm, host, tmp_path, run, initialized):
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    loose = tmp_path / "loose.keytab"
    loose.write_bytes(host.read_bytes())
    os.chmod(loose, 0o644)
    config = write_config(tmp_path / "c.yaml", kerberos_realm, loose, require=True)
    code, _out, err = run("vault", "put", "i1/loose", ccache=cc, config=config)
    assert code == 4 and "readable by everyone" in err



def test_i1_python_api_actor_is_verified_or_claimed(kerberos_realm, host, tmp_path, zt_env):
    """The Python API (aws/runtime.Runtime) builds its actor under the same settings."""
    from zerotrust_admin.aws.runtime import Runtime
    from zerotrust_admin.errors import DeniedError

    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    config = write_config(tmp_path / "c.yaml", kerberos_realm, host, require=True)
    env = {**{k: v for k, v in zt_env.items() if k != "ZEROTRUST_PRINCIPAL"}, "KRB5CCNAME": f"FILE:{cc}"}
    actor = Runtime(config_path=str(config), environ=env).actor
    assert (actor.user, actor.identity) == ("alice@ZT.TEST", "verified")
    forged = tmp_path / "forged"
    forged.write_bytes(forged_ccache("admin@ZT.TEST"))
    with pytest.raises(DeniedError):
        Runtime(config_path=str(config), environ={**env, "KRB5CCNAME": f"FILE:{forged}"}).actor
    claimed = Runtime(config_path=str(write_config(tmp_path / "n.yaml", kerberos_realm, host, verify="none")),
                      environ={**env, "ZEROTRUST_PRINCIPAL": "svc@ZT.TEST"}).actor
    assert (claimed.user, claimed.identity) == ("svc@ZT.TEST", "claimed")

# --- F2: control characters and overlong principals ---------------------------------
@pytest.mark.parametrize("bad", ["\x1b[31mroot@ZT.TEST", "alice@ZT.TEST\n2026-01-01\tmallory", "a\x7fb@ZT.TEST", "a\u009bb@ZT.TEST", "x" * 257])
def test_f2_control_characters_in_env_principal_refused(bad, run, initialized):
    records = len(audit_records(initialized))
    code, _out, err = run("vault", "put", "f2/x", extra={"ZEROTRUST_PRINCIPAL": bad})
    assert code == 2, err
    assert "the principal from ZEROTRUST_PRINCIPAL" in err and "refused" in err
    assert bad not in err and "\x1b" not in err and "\x7f" not in err and "\u009b" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2
    assert len(audit_records(initialized)) == records


def test_f2_control_characters_in_ccache_principal_refused(tmp_path, run, initialized):
    forged = tmp_path / "cc"
    forged.write_bytes(forged_ccache("\x1b[31madmin\nfake"))
    code, _out, err = run("vault", "put", "f2/cc", ccache=forged)
    assert code == 2, err
    assert "contains control characters" in err and "\x1b" not in err and "fake" not in err


def test_f2_control_characters_in_access_check_principal_refused(run, initialized):
    code, out, err = run("access", "check", "app/x", "-a", "read", "-p", "\x1b]0;owned\x07alice")
    assert code == 2, err
    assert "\x1b" not in err + out and "the principal from --principal contains control characters" in err


def test_f2_a_printable_256_character_principal_is_accepted(run, initialized):
    name = "a" * 247 + "@ZT.TEST"
    assert len(name) == 255
    code, _out, err = run("vault", "put", "f2/long", extra={"ZEROTRUST_PRINCIPAL": name})
    assert code == 0, err
    assert audit_records(initialized)[-1]["user"] == name

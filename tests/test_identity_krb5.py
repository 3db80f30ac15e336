"""Operator identity from a real MIT Kerberos KDC: kinit into a FILE ccache and
the tool records alice@ZT.TEST as the audit user; an expired, missing,
damaged or unreadable cache falls back to the OS user and says so."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import kerberos_realm  # noqa: F401  (fixture)
from zerotrust_admin import identity

OS_USER = f"{getpass.getuser()}@{socket.gethostname()}"


@pytest.fixture
def run(zt_env, initialized):
    """Run the CLI without ZEROTRUST_PRINCIPAL, with KRB5CCNAME as given."""

    def go(*args, ccache: str | None, extra: dict | None = None):
        env = {k: v for k, v in zt_env.items() if k not in ("ZEROTRUST_PRINCIPAL", "KRB5CCNAME")}
        if ccache is not None:
            env["KRB5CCNAME"] = ccache
        env.update(extra or {})
        proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], env=env, capture_output=True, input=b"value", cwd=str(ROOT), timeout=60)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    return go


def last_audit_user(home: Path) -> str:
    return json.loads((home / "audit.log").read_text().splitlines()[-1])["user"]


def test_kinit_principal_is_the_audit_user(kerberos_realm, tmp_path, run, initialized):
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc")
    assert identity.parse_ccache(cc.read_bytes())[0] == "alice@ZT.TEST"
    code, _out, err = run("--verbose", "vault", "put", "krb/one", ccache=f"FILE:{cc}")
    assert code == 0, err
    assert last_audit_user(initialized) == "alice@ZT.TEST"
    assert f"identity: alice@ZT.TEST (Kerberos ticket in FILE:{cc}" in err
    # Without FILE: prefix, too.
    code, _out, err = run("vault", "put", "krb/two", ccache=str(cc))
    assert code == 0 and last_audit_user(initialized) == "alice@ZT.TEST"
    # ZEROTRUST_PRINCIPAL (service accounts, cron) comes first.
    code, _out, err = run("--verbose", "vault", "put", "krb/three", ccache=f"FILE:{cc}", extra={"ZEROTRUST_PRINCIPAL": "svc-rotate@ZT.TEST"})
    assert code == 0 and last_audit_user(initialized) == "svc-rotate@ZT.TEST"
    assert "from ZEROTRUST_PRINCIPAL" in err


def test_expired_ticket_falls_back_and_says_so(kerberos_realm, tmp_path, run, initialized):
    cc = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "short", lifetime="1s")
    _principal, ends = identity.parse_ccache(cc.read_bytes())
    time.sleep(max(0.0, max(ends) - time.time()) + 1.1)
    code, _out, err = run("vault", "put", "krb/expired", ccache=f"FILE:{cc}")
    assert code == 0, err
    assert last_audit_user(initialized) == OS_USER
    assert "expired" in err and f"acting as {OS_USER}" in err
    # The library agrees, and a valid ticket read "in the future" is expired too.
    valid = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "long")
    env = {"KRB5CCNAME": f"FILE:{valid}"}
    assert identity.resolve(env).principal == "alice@ZT.TEST"
    later = identity.resolve(env, now=time.time() + 11 * 3600)  # max_life is 10 h
    assert later.source == "os" and "expired" in later.notes[0]


def test_missing_cache_falls_back_quietly_but_verbose_says_which(run, initialized, tmp_path):
    code, _out, err = run("--verbose", "vault", "put", "krb/missing", ccache=f"FILE:{tmp_path / 'nope'}")
    assert code == 0, err
    assert last_audit_user(initialized) == OS_USER
    assert f"identity: {OS_USER} (OS user at this host; no Kerberos credential cache" in err
    code, _out, err = run("vault", "put", "krb/missing2", ccache=f"FILE:{tmp_path / 'nope'}")
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize("kind", ["damaged", "unreadable", "no-ticket"])
def test_bad_cache_falls_back_with_a_warning(kind, kerberos_realm, run, initialized, tmp_path):
    path = tmp_path / "cc"
    if kind == "damaged":
        path.write_bytes(b"\x05\x04garbage")
    elif kind == "unreadable":
        path.mkdir()  # open() fails whatever our privileges (tests may run as root)
    else:
        real = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "real").read_bytes()
        # Keep the header and default principal, drop every credential.
        header_len = 4 + int.from_bytes(real[2:4], "big")
        pos = header_len + 8
        for _ in range(int.from_bytes(real[header_len + 4:header_len + 8], "big") + 1):
            pos += 4 + int.from_bytes(real[pos:pos + 4], "big")
        path.write_bytes(real[:pos])
    code, _out, err = run("vault", "put", f"krb/{kind}", ccache=f"FILE:{path}")
    assert code == 0, err
    assert last_audit_user(initialized) == OS_USER
    assert "warning" in err and f"acting as {OS_USER}" in err
    expected = {"damaged": "damaged", "unreadable": "unreadable", "no-ticket": "holds no ticket"}[kind]
    assert expected in err


def test_ccache_parser_handles_truncation(kerberos_realm, tmp_path):
    data = kerberos_realm.kinit("alice", kerberos_realm.alice_password, tmp_path / "cc").read_bytes()
    principal, ends = identity.parse_ccache(data)
    assert principal == "alice@ZT.TEST" and ends and max(ends) > time.time()
    for cut in range(0, len(data) - 1, 7):
        result = identity.parse_ccache(data[:cut])
        assert result is None or result[0] == "alice@ZT.TEST"

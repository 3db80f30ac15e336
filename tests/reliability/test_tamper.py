"""Tampering: flip bytes of a small vault and of an audit log, swap sealed
records, truncate the vault at every page boundary. Each case must end in an
integrity error or a clean not-found (or, for bytes nobody reads, the right
value): never wrong plaintext, never an exception outside the error hierarchy.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.reliability.helpers import audit_of, open_vault
from zerotrust_admin.errors import ExitCode, ZeroTrustError

SECRETS = {"db/password": b"s3cr3t-password", "krb/keytab": bytes(range(256)) * 2, "api/token": b"tok-123456789"}


@pytest.fixture
def small_vault(initialized, zt_env, tmp_path):
    env = dict(zt_env)
    with open_vault(env) as vault:
        for name, value in SECRETS.items():
            vault.put(name, value)
        vault.put("db/password", b"s3cr3t-password-v2")
    # Fold the WAL into the main file so the file on disk is the whole vault.
    conn = sqlite3.connect(Path(env["ZEROTRUST_HOME"]) / "vault.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    expected = dict(SECRETS)
    expected["db/password"] = b"s3cr3t-password-v2"
    expected["db/password@1"] = (1, SECRETS["db/password"])
    return env, expected


def _read_all(env, expected) -> dict[str, int | str]:
    """name -> "ok" or the exit code of the error; asserts no wrong plaintext."""
    outcome: dict[str, int | str] = {}
    try:
        vault = open_vault(env)
    except ZeroTrustError as exc:
        return {"(open)": exc.exit_code}
    with vault:
        for name, value in expected.items():
            version = None
            if isinstance(value, tuple):  # (version, value): read that version
                version, value = value
            try:
                secret, _ = vault._read(name.split("@")[0], version)
            except ZeroTrustError as exc:
                outcome[(name, version)] = exc.exit_code
                continue
            assert secret.reveal() == value, f"WRONG PLAINTEXT for {name}"
            outcome[(name, version)] = "ok"
    return outcome


def _sealed_regions(db: Path) -> list[tuple[int, int]]:
    """File offsets of every sealed version and wrapped data key."""
    conn = sqlite3.connect(db)
    blobs = [r[0] for r in conn.execute("SELECT sealed FROM versions")] + [r[0] for r in conn.execute("SELECT wrapped FROM deks")]
    conn.close()
    data = db.read_bytes()
    regions = []
    for blob in blobs:
        at = data.find(blob)
        assert at >= 0, "sealed blob not found contiguous in the file"
        regions.append((at, at + len(blob)))
    return regions


def test_flip_every_byte_of_the_ciphertext_area(small_vault, tmp_path):
    env, expected = small_vault
    db = Path(env["ZEROTRUST_HOME"]) / "vault.db"
    pristine = db.read_bytes()
    flips = 0
    for start, end in _sealed_regions(db):
        for offset in range(start, end):
            mutated = bytearray(pristine)
            mutated[offset] ^= 0x01
            db.write_bytes(mutated)
            outcome = _read_all(env, expected)
            codes = {v for v in outcome.values() if v != "ok"}
            assert codes, f"flip at {offset} went unnoticed"
            assert codes <= {ExitCode.INTEGRITY}, (offset, outcome)
            flips += 1
    db.write_bytes(pristine)
    assert flips > 300
    assert all(v == "ok" for v in _read_all(env, expected).values())


def test_flip_bytes_across_the_whole_file(small_vault):
    """Every 5th byte of the file (all pages: schema, meta, indexes, free space)."""
    env, expected = small_vault
    db = Path(env["ZEROTRUST_HOME"]) / "vault.db"
    pristine = db.read_bytes()
    allowed = {ExitCode.INTEGRITY, ExitCode.NOT_FOUND, ExitCode.DENIED, ExitCode.USAGE}
    for offset in range(0, len(pristine), 5):
        mutated = bytearray(pristine)
        mutated[offset] ^= 0xFF
        db.write_bytes(mutated)
        outcome = _read_all(env, expected)  # asserts: never wrong plaintext
        assert {v for v in outcome.values() if v != "ok"} <= allowed, (offset, outcome)
    db.write_bytes(pristine)


def test_swap_and_move_sealed_records(small_vault):
    env, expected = small_vault
    db = Path(env["ZEROTRUST_HOME"]) / "vault.db"
    conn = sqlite3.connect(db)
    a = conn.execute("SELECT sealed FROM versions WHERE name='api/token'").fetchone()[0]
    b = conn.execute("SELECT sealed FROM versions WHERE name='db/password' AND version=2").fetchone()[0]
    conn.execute("UPDATE versions SET sealed=? WHERE name='api/token'", (b,))
    conn.execute("UPDATE versions SET sealed=? WHERE name='db/password' AND version=2", (a,))
    # Replay an older version as the current one.
    conn.execute("UPDATE secrets SET current_version=1 WHERE name='db/password'")
    conn.commit()
    conn.close()
    outcome = _read_all(env, {"api/token": expected["api/token"], "krb/keytab": expected["krb/keytab"]})
    assert outcome[("api/token", None)] == ExitCode.INTEGRITY
    assert outcome[("krb/keytab", None)] == "ok"
    with open_vault(env) as vault:
        # Rolling the pointer back is caught by the secret's head MAC.
        with pytest.raises(ZeroTrustError) as caught:
            vault._read("db/password", None)
        assert caught.value.exit_code == ExitCode.INTEGRITY


@pytest.mark.parametrize("edit", [
    "UPDATE secrets SET sensitive = 0 WHERE name = 'krb/keytab'",         # drop the MFA requirement
    "UPDATE secrets SET deleted_at = NULL WHERE name = 'api/token'",        # undo a soft delete without a key
    "UPDATE secrets SET current_version = 1 WHERE name = 'db/password'",    # point at an older version
    "DELETE FROM versions WHERE name = 'db/password' AND version = 2",      # drop the newest version
    "INSERT INTO secrets (name, incarnation, current_version, sensitive, created, updated, head_mac, bucket) SELECT 'forged', incarnation, 1, 0, created, updated, head_mac, bucket FROM secrets WHERE name = 'api/token'",
])
def test_head_columns_are_authenticated(small_vault, edit):
    env, expected = small_vault
    with open_vault(env) as vault:
        vault.put("krb/keytab", b"k2", sensitive=True)
        vault.delete("api/token")
    db = Path(env["ZEROTRUST_HOME"]) / "vault.db"
    conn = sqlite3.connect(db)
    conn.execute(edit)
    conn.commit()
    conn.close()
    try:  # format 2: the commitment refuses the file at open; the head MACs refuse the row
        vault = open_vault(env)
    except ZeroTrustError as exc:
        assert exc.exit_code == ExitCode.INTEGRITY
        return
    with vault:
        outcomes = []
        for call in (lambda: vault._read("krb/keytab", None), lambda: vault._read("api/token", None, include_deleted=True),
                     lambda: vault._read("db/password", None), lambda: vault.list("", include_deleted=True)):
            try:
                call()
                outcomes.append("ok")
            except ZeroTrustError as exc:
                outcomes.append(exc.exit_code)
    assert ExitCode.INTEGRITY in outcomes, outcomes


def test_truncate_at_every_page_boundary(small_vault):
    env, expected = small_vault
    db = Path(env["ZEROTRUST_HOME"]) / "vault.db"
    pristine = db.read_bytes()
    page = 4096
    cuts = list(range(0, len(pristine), page)) + [len(pristine) - 1, 10, 100]
    for cut in cuts:
        db.write_bytes(pristine[:cut])
        outcome = _read_all(env, expected)
        assert {v for v in outcome.values() if v != "ok"} <= {ExitCode.INTEGRITY, ExitCode.NOT_FOUND}, (cut, outcome)
        assert any(v != "ok" for v in outcome.values()), f"truncation at {cut} went unnoticed"
    db.write_bytes(pristine)


def test_flip_every_byte_of_a_small_audit_log(small_vault):
    env, _ = small_vault
    log = audit_of(env)
    pristine = log.path.read_bytes()
    assert log.verify().ok
    for offset in range(len(pristine)):
        mutated = bytearray(pristine)
        mutated[offset] ^= 0x20
        log.path.write_bytes(mutated)
        result = log.verify()
        assert not result.ok, f"flip at byte {offset} of the audit log went unnoticed"
        assert result.first_bad_seq is not None or result.first_bad_line is not None
    log.path.write_bytes(pristine)
    assert log.verify().ok

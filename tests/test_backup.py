"""Encrypted backups: passphrase and X25519 recipient KEKs, restore into an empty
vault on "another host" (another home), tamper and truncation detection with
nothing written, wrong keys, audit records."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from tests.keyhelpers import open_vault

PASS = {"ZEROTRUST_BACKUP_PASSPHRASE": "correct horse battery staple"}


def other_home(cli, zt_env, tmp_path, name: str = "host2") -> dict:
    """A second, freshly initialised home: the host a backup is restored on."""
    env = {"ZEROTRUST_HOME": str(tmp_path / name / "home"), "XDG_CONFIG_HOME": str(tmp_path / name / "xdg")}
    result = cli("init", env=env)
    assert result.code == 0, result.err
    return env


def populate(env_full: dict) -> dict:
    """Secrets with several versions, binary values, metadata, a sensitive and a deleted one."""
    values = {
        "db/password": [b"first", b"second \xe2\x9c\x93"],
        "krb/keytab": [bytes(range(256)) * 3],
        "app/api-key": [b"k1", b"k2", b"k3"],
        "old/thing": [b"gone soon"],
    }
    vault, _, _ = open_vault(env_full, audited=False)
    try:
        for name, vs in values.items():
            for v in vs:
                vault.put(name, v, metadata={"owner": "ops"})
        vault.put("pci/pan", b"4111111111111111", sensitive=True)
        vault.delete("old/thing")
    finally:
        vault.close()
    values["pci/pan"] = [b"4111111111111111"]
    return values


def assert_restored(env_full: dict, values: dict) -> None:
    vault, _, _ = open_vault(env_full, audited=False)
    try:
        for name, vs in values.items():
            for number, v in enumerate(vs, start=1):
                secret, info = vault._read(name, number, include_deleted=True)
                assert secret.reveal() == v, (name, number)
                assert info.metadata == ({"owner": "ops"} if name != "pci/pan" else {})
        assert vault.info("pci/pan").sensitive is True
        assert vault.info("old/thing").deleted_at is not None
        assert [h.version for h in vault.history("app/api-key")] == [1, 2, 3]
    finally:
        vault.close()


def vault_is_empty(env_full: dict) -> bool:
    vault, _, _ = open_vault(env_full, audited=False)
    try:
        return vault.is_empty()
    finally:
        vault.close()


@pytest.fixture
def source(initialized, zt_env):
    return populate(zt_env)


def test_passphrase_backup_restores_on_another_host(cli, zt_env, tmp_path, source):
    out = tmp_path / "vault.ztb"
    result = cli("vault", "backup", "--output", str(out), "--json", env=PASS)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["kek"] == "passphrase" and report["secrets"] == 5 and report["versions"] == 8
    assert out.stat().st_mode & 0o777 == 0o600
    raw = out.read_bytes()
    for vs in source.values():
        for v in vs:
            assert v not in raw or len(v) < 4  # values are encrypted
    assert PASS["ZEROTRUST_BACKUP_PASSPHRASE"].encode() not in raw
    assert cli("vault", "backup", "--output", str(out), env=PASS).code == 1  # never overwrites silently
    host2 = other_home(cli, zt_env, tmp_path)
    dry = cli("vault", "restore", str(out), "--dry-run", "--json", env={**host2, **PASS})
    assert dry.code == 0 and json.loads(dry.out)["restored"] is False
    assert vault_is_empty({**zt_env, **host2})
    restored = cli("vault", "restore", str(out), "--json", env={**host2, **PASS})
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["versions"] == 8
    assert_restored({**zt_env, **host2}, source)
    got = cli("vault", "get", "krb/keytab", env=host2)
    assert got.out == bytes(range(256)) * 3
    # Restoring again: the vault is no longer empty.
    again = cli("vault", "restore", str(out), env={**host2, **PASS})
    assert again.code == 1 and "not empty" in again.err


def test_recipient_backup_needs_the_private_key(cli, zt_env, tmp_path, source):
    ident = tmp_path / "keys" / "backup.id"
    ident.parent.mkdir(mode=0o700)
    gen = cli("vault", "backup-keygen", "--output", str(ident), "--json")
    assert gen.code == 0, gen.err
    recipient = json.loads(gen.out)["recipient"]
    assert recipient.startswith("zt-x25519:") and ident.stat().st_mode & 0o777 == 0o600
    assert cli("vault", "backup-keygen", "--output", str(ident)).code == 1  # never overwrites a key
    out = tmp_path / "vault.ztb"
    result = cli("vault", "backup", "--output", str(out), "--recipient", recipient, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["kek"] == "x25519"
    host2 = other_home(cli, zt_env, tmp_path)
    no_ident = cli("vault", "restore", str(out), env=host2)
    assert no_ident.code == 2 and "--identity" in no_ident.err
    stranger = tmp_path / "keys" / "stranger.id"
    assert cli("vault", "backup-keygen", "--output", str(stranger)).code == 0
    wrong = cli("vault", "restore", str(out), "--identity", str(stranger), env=host2)
    assert wrong.code == 4 and "recipient" in wrong.err
    assert vault_is_empty({**zt_env, **host2})
    ok = cli("vault", "restore", str(out), "--identity", str(ident), env=host2)
    assert ok.code == 0, ok.err
    assert_restored({**zt_env, **host2}, source)
    # A public key read from the identity file works as a recipient too.
    out2 = tmp_path / "vault2.ztb"
    assert cli("vault", "backup", "--output", str(out2), "--recipient", str(ident)).code == 0


def test_wrong_passphrase_is_denied_and_writes_nothing(cli, zt_env, tmp_path, source):
    out = tmp_path / "vault.ztb"
    assert cli("vault", "backup", "--output", str(out), env=PASS).code == 0
    host2 = other_home(cli, zt_env, tmp_path)
    result = cli("vault", "restore", str(out), env={**host2, "ZEROTRUST_BACKUP_PASSPHRASE": "not the passphrase"})
    assert result.code == 4 and "wrong passphrase" in result.err
    assert vault_is_empty({**zt_env, **host2})
    short = cli("vault", "backup", "--output", str(tmp_path / "x.ztb"), env={"ZEROTRUST_BACKUP_PASSPHRASE": "short"})
    assert short.code == 2 and not (tmp_path / "x.ztb").exists()


def _restore_lib(env_full: dict, path: Path, identity):
    from zerotrust_admin.vault.backup import restore_backup

    vault, _, _ = open_vault(env_full, audited=False)
    try:
        return restore_backup(vault, path, identity=identity)
    finally:
        vault.close()


def test_any_flipped_byte_or_truncation_is_refused_with_nothing_written(cli, zt_env, tmp_path, source):
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.vault.backup import generate_identity, load_identity

    public = generate_identity(tmp_path / "id")
    identity = load_identity(tmp_path / "id")
    good = tmp_path / "good.ztb"
    assert cli("vault", "backup", "--output", str(good), "--recipient", public).code == 0
    data = good.read_bytes()
    host2 = other_home(cli, zt_env, tmp_path)
    env2 = {**zt_env, **host2}
    header_len = struct.unpack(">I", data[10:14])[0]
    # Every byte of the preamble, header, wrapped key and checksum, then a sample of the body.
    positions = list(range(0, 14 + header_len + 4 + 60 + 32))
    positions += list(range(positions[-1] + 1, len(data), max(1, len(data) // 150))) + [len(data) - 1]
    bad = tmp_path / "bad.ztb"
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        bad.write_bytes(bytes(flipped))
        with pytest.raises(IntegrityError):
            _restore_lib(env2, bad, identity)
    for cut in [0, 5, 13, 14 + header_len // 2, 14 + header_len + 30, len(data) // 2, len(data) - 20, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(IntegrityError):
            _restore_lib(env2, bad, identity)
    bad.write_bytes(data + b"\x00\x00\x00\x00")
    with pytest.raises(IntegrityError):
        _restore_lib(env2, bad, identity)
    assert vault_is_empty(env2)
    # Through the CLI: exit 5, one clear line, and still nothing written.
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x80
    bad.write_bytes(bytes(flipped))
    result = cli("vault", "restore", str(bad), "--identity", str(tmp_path / "id"), env=host2)
    assert result.code == 5 and result.err.count("error:") == 1 and "tampered" in result.err
    bad.write_bytes(data[: len(data) - 7])
    assert cli("vault", "restore", str(bad), "--identity", str(tmp_path / "id"), env=host2).code == 5
    assert vault_is_empty(env2)
    assert _restore_lib(env2, good, identity)["restored"] is True
    assert_restored(env2, source)


def test_backup_and_restore_are_audited(cli, zt_env, tmp_path, source, initialized):
    out = tmp_path / "vault.ztb"
    assert cli("vault", "backup", "--output", str(out), env=PASS).code == 0
    host2 = other_home(cli, zt_env, tmp_path)
    assert cli("vault", "restore", str(out), env={**host2, "ZEROTRUST_BACKUP_PASSPHRASE": "wrong wrong wrong"}).code == 4
    assert cli("vault", "restore", str(out), env={**host2, **PASS}).code == 0
    src = [json.loads(x) for x in (initialized / "audit.log").read_text().splitlines()]
    dst = [json.loads(x) for x in (Path(host2["ZEROTRUST_HOME"]) / "audit.log").read_text().splitlines()]
    backups = [r for r in src if r["event"] == "backup"]
    assert [(r["action"], r["success"]) for r in backups] == [("backup", True)]
    assert backups[0]["details"]["versions"] == 8
    restores = [r for r in dst if r["event"] == "backup"]
    assert [(r["action"], r["success"]) for r in restores] == [("restore", False), ("restore", True)]
    assert restores[0]["details"]["error"] == "DeniedError"
    everything = (initialized / "audit.log").read_text() + (Path(host2["ZEROTRUST_HOME"]) / "audit.log").read_text()
    assert PASS["ZEROTRUST_BACKUP_PASSPHRASE"] not in everything and "hunter" not in everything


def test_backup_format_binds_version_and_kek_type(tmp_path):
    """Known structure: preamble fields are authenticated; swapping the KEK type is detected."""
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.vault import backup as bk

    records = [{"type": "secret", "name": "a", "current_version": 1, "sensitive": False, "created": "t", "updated": "t",
                "deleted_at": None, "deleted_by": None}]
    out = tmp_path / "b"
    with open(out, "wb") as fh:
        bk.write_backup(iter(records), fh, bk.PassphraseKek(Secret("a long passphrase!"), scrypt_n=2**10), source_vault_id="v1")
    data = out.read_bytes()
    assert data[:8] == b"ZTBACKUP" and data[8] == bk.VERSION and data[9] == bk.KEK_PASSPHRASE
    header = json.loads(data[14:14 + struct.unpack(">I", data[10:14])[0]])
    assert header["kek"]["type"] == "passphrase" and header["kek"]["kdf"]["n"] == 2**10 and header["source_vault_id"] == "v1"
    for pos, value in ((8, 2), (9, bk.KEK_X25519)):
        tampered = bytearray(data)
        tampered[pos] = value
        (tmp_path / "t").write_bytes(bytes(tampered))
        with pytest.raises(IntegrityError):
            bk.verify_backup(tmp_path / "t", get_passphrase=lambda: Secret("a long passphrase!"))
    info = bk.verify_backup(out, get_passphrase=lambda: Secret("a long passphrase!"))
    assert info["secrets"] == 1 and info["versions"] == 0


KAT_RECORDS = [
    ("db/password", 1, b"first", "{}"),
    ("db/password", 2, b"second\x00\xff", '{"owner":"dba"}'),
]


@pytest.mark.parametrize("vector", ["backup-v1-passphrase.ztb", "backup-v1-x25519.ztb"])
def test_known_answer_backups_still_read(vector):
    """Committed format-1 backups (tests/vectors) must keep reading byte for byte:
    a change to the format breaks this test, not operators' old backups."""
    import base64

    from zerotrust_admin.secret import Secret
    from zerotrust_admin.vault import backup as bk

    path = Path(__file__).parent / "vectors" / vector
    kwargs = ({"get_passphrase": lambda: Secret("known-answer passphrase")} if "passphrase" in vector
              else {"identity": Secret(bytes(range(1, 33)))})
    info = bk.verify_backup(path, **kwargs)
    assert (info["secrets"], info["versions"], info["source_vault_id"]) == (1, 2, "kat-vault")
    with open(path, "rb") as fh:
        head = bk.read_header(fh)
        cek = bk._unwrap_cek(head, kwargs.get("get_passphrase"), kwargs.get("identity"))
        records = list(bk._records(fh, head, cek))
    versions = [(r["name"], r["version"], base64.b64decode(r["value"]), r["metadata"]) for r in records if r["type"] == "version"]
    assert versions == KAT_RECORDS
    if "x25519" in vector:
        assert head.header["kek"]["recipient"] == base64.b64encode(bk.parse_public("zt-x25519:B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHw=")).decode()

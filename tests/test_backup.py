"""Encrypted, signed backups: passphrase and X25519 recipient KEKs, restore into
an empty vault on "another host" (another home, trusting the source's
signing.pub), tamper and truncation detection with nothing written, wrong keys,
audit records. The attacks of threat-model rows B1-B3 are in
tests/security/test_tm_backup.py. The format's known-answer vectors are
recomputed from docs/backup.md at the end of this file."""

from __future__ import annotations

import base64
import json
import struct
import time
from pathlib import Path

import pytest

from tests.keyhelpers import open_vault

PASS = {"ZEROTRUST_BACKUP_PASSPHRASE": "correct horse battery staple"}


def fixed_signer(seed: bytes = bytes(range(0x61, 0x81))):
    """An installation signing key from a fixed seed (zerotrust_admin.signing's own classes)."""
    from zerotrust_admin.crypto.ed25519 import ed25519_public, ed25519_sign
    from zerotrust_admin.signing import PublicKey, SigningKey

    return SigningKey(PublicKey(ed25519_public(seed)), lambda m: ed25519_sign(seed, m), "test", "file")


class Mfa:
    """The test principal's MFA enrolment: a backup that includes a sensitive
    secret needs one code, and a code is good once per 30 s step."""

    def __init__(self, cli, env: dict | None = None):
        result = cli("mfa", "enroll", "--json", env=env)
        assert result.code == 0, result.err
        secret = json.loads(result.out)["secret_base32"]
        self.seed = base64.b32decode(secret + "=" * (-len(secret) % 8))
        self.used: set[int] = set()

    def code(self) -> dict:
        from zerotrust_admin.mfa import totp

        while True:
            now = time.time()
            step = int(now // 30)
            if now % 30 <= 27 and step not in self.used and step - 1 not in self.used:
                self.used.add(step)
                return {"ZEROTRUST_OTP": totp.totp(self.seed, now)}
            time.sleep(30 - now % 30 + 0.3)


def other_home(cli, zt_env, tmp_path, name: str = "host2") -> dict:
    """A second, freshly initialised home: the host a backup is restored on."""
    env = {"ZEROTRUST_HOME": str(tmp_path / name / "home"), "XDG_CONFIG_HOME": str(tmp_path / name / "xdg")}
    result = cli("init", env=env)
    assert result.code == 0, result.err
    return env


def signer_of(home: Path | str) -> list[str]:
    """``--signer`` for a restore on another host: the source installation's signing.pub."""
    return ["--signer", str(Path(home) / "signing.pub")]


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


@pytest.fixture
def mfa(cli, initialized):
    return Mfa(cli)


def test_passphrase_backup_restores_on_another_host(cli, zt_env, tmp_path, source, mfa, initialized):
    out = tmp_path / "vault.ztb"
    assert cli("vault", "backup", "--output", str(out), env=PASS).code == 4  # the sensitive secret needs a code
    assert not out.exists()
    result = cli("vault", "backup", "--output", str(out), "--json", env={**PASS, **mfa.code()})
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["kek"] == "passphrase" and report["secrets"] == 5 and report["versions"] == 8
    assert report["left_out"] == {"hidden": 0, "reserved": 1}  # alice's MFA seed
    assert out.stat().st_mode & 0o777 == 0o600
    raw = out.read_bytes()
    assert raw[8] == 2  # format 2: signed
    for vs in source.values():
        for v in vs:
            assert v not in raw or len(v) < 4  # values are encrypted
    assert PASS["ZEROTRUST_BACKUP_PASSPHRASE"].encode() not in raw
    assert cli("vault", "backup", "--output", str(out), env=PASS).code == 1  # never overwrites silently (checked first)
    host2 = other_home(cli, zt_env, tmp_path)
    dry = cli("vault", "restore", str(out), "--dry-run", "--json", *signer_of(initialized), env={**host2, **PASS})
    assert dry.code == 0, dry.err
    assert json.loads(dry.out)["restored"] is False and json.loads(dry.out)["signed"] is True
    assert vault_is_empty({**zt_env, **host2})
    restored = cli("vault", "restore", str(out), "--json", *signer_of(initialized), env={**host2, **PASS})
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["versions"] == 8
    assert_restored({**zt_env, **host2}, source)
    got = cli("vault", "get", "krb/keytab", env=host2)
    assert got.out == bytes(range(256)) * 3
    # Restoring again: the vault is no longer empty.
    again = cli("vault", "restore", str(out), *signer_of(initialized), env={**host2, **PASS})
    assert again.code == 1 and "not empty" in again.err


def test_same_host_restore_trusts_its_own_key(cli, zt_env, tmp_path, source, mfa, initialized):
    """Lose the vault, keep the home's signing key: restore needs no --signer."""
    out = tmp_path / "vault.ztb"
    assert cli("vault", "backup", "--output", str(out), env={**PASS, **mfa.code()}).code == 0
    (initialized / "vault.db").rename(tmp_path / "lost-vault.db")
    (initialized / "master.key").rename(tmp_path / "lost-master.key")
    (initialized / "audit.log").rename(tmp_path / "lost-audit.log")
    for extra in initialized.glob("audit.*"):
        extra.rename(tmp_path / ("lost-" + extra.name))
    assert cli("init").code == 0
    restored = cli("vault", "restore", str(out), env=PASS)
    assert restored.code == 0, restored.err
    assert_restored(zt_env, source)


def test_recipient_backup_needs_the_private_key(cli, zt_env, tmp_path, source, mfa, initialized):
    from zerotrust_admin.vault import backup as bk

    ident = tmp_path / "keys" / "backup.id"
    ident.parent.mkdir(mode=0o700)
    gen = cli("vault", "backup-keygen", "--output", str(ident), "--json")
    assert gen.code == 0, gen.err
    recipient = json.loads(gen.out)["recipient"]
    assert recipient.startswith("zt-x25519:") and ident.stat().st_mode & 0o777 == 0o600
    assert cli("vault", "backup-keygen", "--output", str(ident)).code == 1  # never overwrites a key
    out = tmp_path / "vault.ztb"
    result = cli("vault", "backup", "--output", str(out), "--recipient", recipient, "--json", env=mfa.code())
    assert result.code == 0, result.err
    assert json.loads(result.out)["kek"] == "x25519"
    host2 = other_home(cli, zt_env, tmp_path)
    no_ident = cli("vault", "restore", str(out), *signer_of(initialized), env=host2)
    assert no_ident.code == 2 and "--identity" in no_ident.err
    stranger = tmp_path / "keys" / "stranger.id"
    assert cli("vault", "backup-keygen", "--output", str(stranger)).code == 0
    wrong = cli("vault", "restore", str(out), "--identity", str(stranger), *signer_of(initialized), env=host2)
    assert wrong.code == 4 and "recipient" in wrong.err
    assert vault_is_empty({**zt_env, **host2})
    ok = cli("vault", "restore", str(out), "--identity", str(ident), *signer_of(initialized), env=host2)
    assert ok.code == 0, ok.err
    assert_restored({**zt_env, **host2}, source)
    # A public key read from the identity file works as a recipient too.
    assert bk.format_public(bk.parse_public(str(ident))) == recipient


def test_wrong_passphrase_is_denied_and_writes_nothing(cli, zt_env, tmp_path, source, mfa, initialized):
    out = tmp_path / "vault.ztb"
    assert cli("vault", "backup", "--output", str(out), env={**PASS, **mfa.code()}).code == 0
    host2 = other_home(cli, zt_env, tmp_path)
    result = cli("vault", "restore", str(out), *signer_of(initialized), env={**host2, "ZEROTRUST_BACKUP_PASSPHRASE": "not the passphrase"})
    assert result.code == 4 and "wrong passphrase" in result.err
    assert vault_is_empty({**zt_env, **host2})
    # A short passphrase is refused before anything is written (host2 has no sensitive secret: no code needed).
    assert cli("vault", "put", "x/y", input=b"v", env=host2).code == 0
    short = cli("vault", "backup", "--output", str(tmp_path / "x.ztb"), env={**host2, "ZEROTRUST_BACKUP_PASSPHRASE": "short"})
    assert short.code == 2 and not (tmp_path / "x.ztb").exists()


def _restore_lib(env_full: dict, path: Path, identity, trusted):
    from zerotrust_admin.vault.backup import restore_backup

    vault, _, _ = open_vault(env_full, audited=False)
    try:
        return restore_backup(vault, path, identity=identity, trusted=trusted)
    finally:
        vault.close()


def test_any_flipped_byte_or_truncation_is_refused_with_nothing_written(cli, zt_env, tmp_path, source, mfa, initialized):
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.signing import PublicKey
    from zerotrust_admin.vault.backup import generate_identity, load_identity

    public = generate_identity(tmp_path / "id")
    identity = load_identity(tmp_path / "id")
    good = tmp_path / "good.ztb"
    assert cli("vault", "backup", "--output", str(good), "--recipient", public, env=mfa.code()).code == 0
    trusted = PublicKey.from_file(initialized / "signing.pub")
    data = good.read_bytes()
    host2 = other_home(cli, zt_env, tmp_path)
    env2 = {**zt_env, **host2}
    header_len = struct.unpack(">I", data[10:14])[0]
    # Every byte of the preamble, header, wrapped key, checksum and first chunk framing, a sample
    # of the body, and every byte of the signature.
    positions = list(range(0, 14 + header_len + 4 + 60 + 32 + 5))
    positions += list(range(positions[-1] + 1, len(data) - 64, max(1, len(data) // 150)))
    positions += list(range(len(data) - 64, len(data)))
    bad = tmp_path / "bad.ztb"
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        bad.write_bytes(bytes(flipped))
        with pytest.raises(IntegrityError):
            _restore_lib(env2, bad, identity, trusted)
    for cut in [0, 5, 13, 14 + header_len // 2, 14 + header_len + 30, len(data) // 2, len(data) - 65, len(data) - 20, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(IntegrityError):
            _restore_lib(env2, bad, identity, trusted)
    bad.write_bytes(data + b"\x00\x00\x00\x00")
    with pytest.raises(IntegrityError):
        _restore_lib(env2, bad, identity, trusted)
    assert vault_is_empty(env2)
    # Through the CLI: exit 5, one clear line, and still nothing written.
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x80
    bad.write_bytes(bytes(flipped))
    result = cli("vault", "restore", str(bad), "--identity", str(tmp_path / "id"), *signer_of(initialized), env=host2)
    assert result.code == 5 and result.err.count("error:") == 1 and "signature" in result.err
    bad.write_bytes(data[: len(data) - 7])
    assert cli("vault", "restore", str(bad), "--identity", str(tmp_path / "id"), *signer_of(initialized), env=host2).code == 5
    assert vault_is_empty(env2)
    assert _restore_lib(env2, good, identity, trusted)["restored"] is True
    assert_restored(env2, source)


def test_backup_and_restore_are_audited(cli, zt_env, tmp_path, source, mfa, initialized):
    out = tmp_path / "vault.ztb"
    assert cli("vault", "backup", "--output", str(out), env={**PASS, **mfa.code()}).code == 0
    host2 = other_home(cli, zt_env, tmp_path)
    assert cli("vault", "restore", str(out), *signer_of(initialized), env={**host2, "ZEROTRUST_BACKUP_PASSPHRASE": "wrong wrong wrong"}).code == 4
    assert cli("vault", "restore", str(out), *signer_of(initialized), env={**host2, **PASS}).code == 0
    src = [json.loads(x) for x in (initialized / "audit.log").read_text().splitlines()]
    dst = [json.loads(x) for x in (Path(host2["ZEROTRUST_HOME"]) / "audit.log").read_text().splitlines()]
    backups = [r for r in src if r["event"] == "backup"]
    assert [(r["action"], r["success"]) for r in backups] == [("backup", True)]
    assert backups[0]["details"]["versions"] == 8 and backups[0]["details"]["left_out_reserved"] == 1
    from zerotrust_admin.signing import PublicKey

    assert backups[0]["details"]["signer_key_id"] == PublicKey.from_file(initialized / "signing.pub").key_id
    restores = [r for r in dst if r["event"] == "backup"]
    assert [(r["action"], r["success"]) for r in restores] == [("restore", False), ("restore", True)]
    assert restores[0]["details"]["error"] == "DeniedError"
    assert restores[1]["details"]["signed"] is True and restores[1]["details"]["signer_key_id"] == backups[0]["details"]["signer_key_id"]
    everything = (initialized / "audit.log").read_text() + (Path(host2["ZEROTRUST_HOME"]) / "audit.log").read_text()
    assert PASS["ZEROTRUST_BACKUP_PASSPHRASE"] not in everything and "hunter" not in everything


def test_backup_format_binds_version_and_kek_type(tmp_path):
    """Known structure: preamble fields are authenticated; swapping the KEK type or version is detected."""
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.vault import backup as bk

    signer = fixed_signer()
    records = [{"type": "secret", "name": "a", "current_version": 1, "sensitive": False, "created": "t", "updated": "t",
                "deleted_at": None, "deleted_by": None}]
    out = tmp_path / "b"
    with open(out, "wb") as fh:
        bk.write_backup(iter(records), fh, bk.PassphraseKek(Secret("a long passphrase!"), scrypt_n=2**10), signer=signer, source_vault_id="v1")
    data = out.read_bytes()
    assert data[:8] == b"ZTBACKUP" and data[8] == bk.VERSION == 2 and data[9] == bk.KEK_PASSPHRASE
    header = json.loads(data[14:14 + struct.unpack(">I", data[10:14])[0]])
    assert header["kek"]["type"] == "passphrase" and header["kek"]["kdf"]["n"] == 2**10 and header["source_vault_id"] == "v1"
    assert header["signer"] == {"algorithm": "ed25519", "key_id": signer.key_id}
    for pos, value in ((8, 1), (8, 3), (9, bk.KEK_X25519)):
        tampered = bytearray(data)
        tampered[pos] = value
        (tmp_path / "t").write_bytes(bytes(tampered))
        with pytest.raises(IntegrityError):
            bk.verify_backup(tmp_path / "t", get_passphrase=lambda: Secret("a long passphrase!"), trusted=signer.public, allow_unsigned=True)
    info = bk.verify_backup(out, get_passphrase=lambda: Secret("a long passphrase!"), trusted=signer.public)
    assert info["secrets"] == 1 and info["versions"] == 0 and info["signed"] is True


KAT_RECORDS = [
    ("db/password", 1, b"first", "{}"),
    ("db/password", 2, b"second\x00\xff", '{"owner":"dba"}'),
]


@pytest.mark.parametrize("vector", ["backup-v1-passphrase.ztb", "backup-v1-x25519.ztb"])
def test_known_answer_v1_backups_still_read_when_unsigned_is_allowed(vector):
    """Committed format-1 (unsigned) backups (tests/vectors) keep reading byte for
    byte behind allow_unsigned, and are refused without it."""
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.vault import backup as bk

    path = Path(__file__).parent / "vectors" / vector
    kwargs = ({"get_passphrase": lambda: Secret("known-answer passphrase")} if "passphrase" in vector
              else {"identity": Secret(bytes(range(1, 33)))})
    with pytest.raises(IntegrityError, match="unsigned"):
        bk.verify_backup(path, trusted=fixed_signer().public, **kwargs)
    info = bk.verify_backup(path, allow_unsigned=True, **kwargs)
    assert (info["secrets"], info["versions"], info["source_vault_id"], info["signed"]) == (1, 2, "kat-vault", False)
    with open(path, "rb") as fh:
        rd = bk._Reader(fh)
        head = bk._read_header(rd)
        cek = bk._unwrap_cek(head, kwargs.get("get_passphrase"), kwargs.get("identity"))
        records = list(bk._records(rd, head, cek))
    versions = [(r["name"], r["version"], base64.b64decode(r["value"]), r["metadata"]) for r in records if r["type"] == "version"]
    assert versions == KAT_RECORDS
    if "x25519" in vector:
        assert head.header["kek"]["recipient"] == base64.b64encode(bk.parse_public("zt-x25519:B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHw=")).decode()


# --- format 2 known answers: docs/backup.md, recomputed from the doc's numbers --------------
DOC = Path(__file__).resolve().parents[1] / "docs" / "backup.md"


def doc_vectors() -> tuple[bytes, list[dict]]:
    """The payload block and every `kat = ...` block of docs/backup.md's
    "Known-answer vectors" section: `key = value` lines, long hex values
    continued on indented lines."""
    import re

    text = DOC.read_text().split("## Known-answer vectors", 1)[1]
    blocks = re.findall(r"```text\n(.*?)```", text, re.S)
    payload, vectors = blocks[0].encode(), []
    for block in blocks[1:]:
        values: dict = {}
        key = None
        for line in block.splitlines():
            if line.startswith("    ") and key:
                values[key] += line.strip()
            else:
                key, _, value = line.partition(" = ") if " = " in line else (line.rstrip(" ="), "", "")
                values[key] = value
        vectors.append(values)
    return payload, vectors


def recompute(v: dict, payload: bytes) -> bytes:
    """A second implementation, from the doc's prose and inputs, on cryptography's
    primitives (not zerotrust_admin's writer); asserts every intermediate value."""
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = lambda key: key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # noqa: E731
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    canonical = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    h = bytes.fromhex
    if v["kat"] == "x25519":
        r = X25519PrivateKey.from_private_bytes(h(v["recipient_private"]))
        R = raw(r.public_key())
        assert R.hex() == v["recipient_public"] and v["recipient_string"] == "zt-x25519:" + b64(R)
        fp = hashlib.sha256(b"zt-x25519-fp\n" + R).hexdigest()[:16]
        assert fp == v["recipient_fingerprint"]
        e = X25519PrivateKey.from_private_bytes(h(v["ephemeral_private"]))
        e_pub = raw(e.public_key())
        shared = e.exchange(X25519PublicKey.from_public_bytes(R))
        assert e_pub.hex() == v["ephemeral_public"] and shared.hex() == v["shared"]
        kek = HKDF(hashes.SHA256(), 32, e_pub + R, b"zt-backup-v1 x25519 kek").derive(shared)
        kek_type, kek_json = 2, {"ephemeral": b64(e_pub), "recipient": b64(R), "recipient_fingerprint": fp, "type": "x25519"}
    else:
        n = int(v["scrypt_n"])
        kek = Scrypt(salt=h(v["salt"]), length=32, n=n, r=8, p=1).derive(v["passphrase"].encode())
        kek_type, kek_json = 1, {"kdf": {"algorithm": "scrypt", "n": n, "p": 1, "r": 8, "salt_hex": v["salt"]}, "type": "passphrase"}
    assert kek.hex() == v["kek"]
    seed = Ed25519PrivateKey.from_private_bytes(h(v["signing_seed"]))
    public = raw(seed.public_key())
    key_id = hashlib.sha256(public).digest()[:8].hex()
    assert public.hex() == v["signing_public"] and key_id == v["signer_key_id"]
    stated = json.loads(v["header"])
    header = canonical({"chunk_size": 65536, "created": stated["created"], "kek": kek_json, "payload": "jsonl-v2",
                        "payload_bytes": len(payload), "signer": {"algorithm": "ed25519", "key_id": key_id}, "source_vault_id": stated["source_vault_id"]})
    assert header == v["header"].encode()
    preamble = b"ZTBACKUP" + bytes([2, kek_type]) + struct.pack(">I", len(header))
    assert preamble.hex() == v["preamble"]
    wrapped = h(v["wrap_nonce"]) + AESGCM(kek).encrypt(h(v["wrap_nonce"]), h(v["cek"]), preamble + header)
    assert wrapped.hex() == v["wrapped"]
    checksum = hashlib.sha256(preamble + header + struct.pack(">I", len(wrapped)) + wrapped).digest()
    assert checksum.hex() == v["checksum"]
    sealed = h(v["chunk0_nonce"]) + AESGCM(h(v["cek"])).encrypt(h(v["chunk0_nonce"]), payload, checksum + struct.pack(">QB", 0, 1))
    chunk0 = struct.pack(">BI", 1, len(sealed)) + sealed
    assert chunk0.hex() == v["chunk0"]
    body = preamble + header + struct.pack(">I", len(wrapped)) + wrapped + checksum + chunk0
    transcript = hashlib.sha256(body).digest()
    assert transcript.hex() == v["transcript"]
    signature = seed.sign(b"zerotrust-admin backup v2 signature\n" + transcript)
    assert signature.hex() == v["signature"]
    return body + signature


def test_format2_known_answers_recompute_from_the_doc():
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.signing import PublicKey
    from zerotrust_admin.vault import backup as bk

    payload, vectors = doc_vectors()
    assert [v["kat"] for v in vectors] == ["x25519", "passphrase"]
    assert bk.SIG_CONTEXT.hex() in DOC.read_text()
    for v in vectors:
        data = recompute(v, payload)
        path = Path(__file__).parent / "vectors" / f"backup-v2-{v['kat']}.ztb"
        assert path.read_bytes() == data, f"{path.name} differs from docs/backup.md"
        # The tool reads the stranger's file...
        kwargs = ({"identity": Secret(bytes.fromhex(v["recipient_private"]))} if v["kat"] == "x25519"
                  else {"get_passphrase": lambda v=v: Secret(v["passphrase"])})
        info = bk.verify_backup(path, trusted=PublicKey(bytes.fromhex(v["signing_public"])), **kwargs)
        assert (info["secrets"], info["versions"], info["signer_key_id"], info["format"]) == (1, 1, v["signer_key_id"], 2)
        # ...and writes the same bytes from the same draws.
        assert _generator().build(v["kat"]) == data


def _generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_backup_v2", Path(__file__).parent / "vectors" / "generate_backup_v2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_format2_vector_tampering_is_caught_at_each_layer(tmp_path):
    """The committed vector, edited the way each layer of the doc says it is checked."""
    from zerotrust_admin.errors import DeniedError, IntegrityError
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.signing import PublicKey
    from zerotrust_admin.vault import backup as bk

    _, vectors = doc_vectors()
    v = vectors[0]
    data = (Path(__file__).parent / "vectors" / "backup-v2-x25519.ztb").read_bytes()
    trusted = PublicKey(bytes.fromhex(v["signing_public"]))
    ident = Secret(bytes.fromhex(v["recipient_private"]))
    path = tmp_path / "t.ztb"
    path.write_bytes(data)
    with pytest.raises(IntegrityError, match="signed by key"):
        bk.verify_backup(path, identity=ident, trusted=fixed_signer().public)
    with pytest.raises(IntegrityError, match="no trusted signing key"):
        bk.verify_backup(path, identity=ident)
    with pytest.raises(DeniedError):
        bk.verify_backup(path, identity=Secret(bytes(range(2, 34))), trusted=trusted)
    # The body re-signed by another key (the header still names the trusted key id) fails; the original passes.
    import hashlib

    from zerotrust_admin.crypto.ed25519 import ed25519_sign

    body = data[:-64]
    path.write_bytes(body + ed25519_sign(bytes(32), bk.SIG_CONTEXT + hashlib.sha256(body).digest()))
    with pytest.raises(IntegrityError, match="does not verify"):
        bk.verify_backup(path, identity=ident, trusted=trusted)
    path.write_bytes(data)
    assert bk.verify_backup(path, identity=ident, trusted=trusted)["versions"] == 1


def test_writer_declares_the_payload_and_discards_a_vault_that_changed_between_its_two_reads(tmp_path):
    """write_backup reads the records twice (measure for the header's
    payload_bytes, then write); a second read that differs is BusyError (exit 7).
    Chunking: exactly ceil(P / 65536) chunks, the last never empty, whatever P."""
    import io

    from zerotrust_admin.errors import BusyError
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.vault import backup as bk

    t = "2026-01-01T00:00:00.000000Z"

    def records(value: bytes, by: str = "x"):
        return [{"type": "secret", "name": "a/b", "current_version": 1, "sensitive": False, "created": t, "updated": t,
                 "deleted_at": None, "deleted_by": None},
                {"type": "version", "name": "a/b", "version": 1, "created": t, "created_by": by, "metadata": "{}",
                 "value": base64.b64encode(value).decode()}]

    calls = []

    def changing():
        calls.append(1)
        return iter(records(b"first" if len(calls) == 1 else b"second"))

    signer = fixed_signer()
    kek = bk.PassphraseKek(Secret("a long enough passphrase"), scrypt_n=2**10)
    with pytest.raises(BusyError, match="changed while the backup"):
        bk.write_backup(changing, io.BytesIO(), kek, signer=signer, source_vault_id="v")

    # A payload of exactly k * 65536 bytes: k chunks, none empty; the reader checks the declared layout.
    def payload_size(recs) -> int:
        return sum(len(line) for line in bk._payload_lines(recs, "v"))

    for target in (65536, 2 * 65536, 2 * 65536 + 1):
        value = b"x" * (((target - 1000) // 4) * 3)
        by = "x" * (1 + target - payload_size(records(value)))  # pad created_by to hit the size exactly
        size = payload_size(records(value, by))
        assert size == target
        out = io.BytesIO()
        result = bk.write_backup(records(value, by), out, kek, signer=signer, source_vault_id="v")
        path = tmp_path / f"p{target}.ztb"
        path.write_bytes(out.getvalue())
        head = bk.read_header(io.BytesIO(out.getvalue()))
        assert head.payload_bytes == size and result["chunks"] == head.chunks == -(-size // 65536), (target, size)
        assert len(out.getvalue()) == head.file_size
        info = bk.verify_backup(path, trusted=signer.public, get_passphrase=lambda: Secret("a long enough passphrase"))
        assert info["versions"] == 1

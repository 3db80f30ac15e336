"""Threat-model rows B1, B2, B3 (docs/threat-model.md): backups.

B1: attacker (d) holds the public material (a backup recipient string, a
signing.pub) and forges a backup that would restore values and TOTP seeds of
their choice. B2: attacker (a) runs `vault backup` outside policy. B3: attacker
(b) edits a backup's header so that restore spends unbounded time and memory.
Every test runs the real CLI against real homes and files and checks that
nothing was restored or written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from pathlib import Path

import pytest
import yaml

from tests.keyhelpers import open_vault
from zerotrust_admin.mfa import totp

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PASS = {"ZEROTRUST_BACKUP_PASSPHRASE": "correct horse battery staple"}
ALICE = "alice@EXAMPLE.COM"
MALLORY_SEED = bytes(range(0xA0, 0xC0))  # the attacker's own Ed25519 signing key
EVERYONE_ALL = {"principals": ["*"], "secrets": ["*"], "actions": ["*"], "effect": "allow"}


# --- helpers -------------------------------------------------------------------------
def second_home(cli, tmp_path: Path, name: str = "host2") -> dict:
    env = {"ZEROTRUST_HOME": str(tmp_path / name / "home"), "XDG_CONFIG_HOME": str(tmp_path / name / "xdg")}
    result = cli("init", env=env)
    assert result.code == 0, result.err
    return env


def names_in(zt_env: dict, env: dict) -> list[str]:
    vault, _, _ = open_vault({**zt_env, **env}, audited=False)
    try:
        return [i.name for i in vault.list("", include_deleted=True)]
    finally:
        vault.close()


def write_config(tmp_path: Path, *rules, name: str = "policy.yaml") -> dict:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"access": {"policies": list(rules)}}))
    path.chmod(0o600)
    return {"ZEROTRUST_CONFIG": str(path)}


def audit_records(home: Path) -> list[dict]:
    out = []
    for line in (home / "audit.log").read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "event" in rec:
            out.append(rec)
    return out


def enrol(cli, env: dict | None = None) -> bytes:
    result = cli("mfa", "enroll", "--json", env=env)
    assert result.code == 0, result.err
    secret = json.loads(result.out)["secret_base32"]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def fresh_code(seed: bytes) -> dict:
    if time.time() % 30 > 27:
        time.sleep(30 - time.time() % 30 + 0.2)
    return {"ZEROTRUST_OTP": totp.totp(seed, time.time())}


def keygen(cli, tmp_path: Path) -> tuple[str, Path]:
    ident = tmp_path / "backup.id"
    result = cli("vault", "backup-keygen", "--output", str(ident), "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)["recipient"], ident


def signer_from_seed(seed: bytes):
    from zerotrust_admin.crypto.ed25519 import ed25519_public, ed25519_sign
    from zerotrust_admin.signing import PublicKey, SigningKey

    return SigningKey(PublicKey(ed25519_public(seed)), lambda m: ed25519_sign(seed, m), "attacker", "file")


def chosen_records(seed_for_alice: bytes) -> list[dict]:
    """What the attacker wants restored: a database password and alice's TOTP seed."""
    from zerotrust_admin.mfa import seed_name

    t = "2026-01-01T00:00:00.000000Z"
    recs = []
    for name, value in (("db/password", b"attacker-chosen"), (seed_name(ALICE), seed_for_alice)):
        recs.append({"type": "secret", "name": name, "current_version": 1, "sensitive": False, "created": t, "updated": t,
                     "deleted_at": None, "deleted_by": None})
    for name, value in (("db/password", b"attacker-chosen"), (seed_name(ALICE), seed_for_alice)):
        recs.append({"type": "version", "name": name, "version": 1, "created": t, "created_by": "mallory", "metadata": "{}",
                     "value": base64.b64encode(value).decode()})
    return recs


def forge_unsigned_v1(recipient: str, records: list[dict], out: Path) -> None:
    """Format 1 written from its documentation with nothing but the recipient string."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    R = base64.b64decode(recipient.split(":", 1)[1])
    eph = X25519PrivateKey.generate()
    e_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kek = HKDF(hashes.SHA256(), 32, e_pub + R, b"zt-backup-v1 x25519 kek").derive(eph.exchange(X25519PublicKey.from_public_bytes(R)))
    fp = hashlib.sha256(b"zt-x25519-fp\n" + R).hexdigest()[:16]
    canon = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    header = canon({"chunk_size": 65536, "created": "2026-01-01T00:00:00.000000Z", "payload": "jsonl-v1", "source_vault_id": "forged",
                    "kek": {"type": "x25519", "ephemeral": base64.b64encode(e_pub).decode(), "recipient": base64.b64encode(R).decode(),
                            "recipient_fingerprint": fp}})
    pre = b"ZTBACKUP" + struct.pack(">BBI", 1, 2, len(header))
    cek = bytes(32)
    wrapped = b"\x01" * 12 + AESGCM(kek).encrypt(b"\x01" * 12, cek, pre + header)
    checksum = hashlib.sha256(pre + header + struct.pack(">I", len(wrapped)) + wrapped).digest()
    body = canon({"type": "backup", "format": 1, "source_vault_id": "forged"}) + b"\n"
    body += b"".join(canon(r) + b"\n" for r in records) + canon({"type": "end", "secrets": 2, "versions": 2}) + b"\n"
    sealed = b"\x02" * 12 + AESGCM(cek).encrypt(b"\x02" * 12, body, checksum + struct.pack(">QB", 0, 1))
    out.write_bytes(pre + header + struct.pack(">I", len(wrapped)) + wrapped + checksum + struct.pack(">I", len(sealed)) + sealed)


def forge_signed(recipient: str, records: list[dict], out: Path, signer, claim_key_id: str | None = None) -> None:
    """Format 2 made by the attacker with their own signing key (optionally
    claiming the victim's key id in the header)."""
    from zerotrust_admin.vault import backup as bk

    class Claiming:
        key_id = claim_key_id or signer.key_id

        def sign(self, message: bytes) -> bytes:
            return signer.sign(message)

    with open(out, "wb") as fh:
        bk.write_backup(iter(records), fh, bk.RecipientKek(bk.parse_public(recipient)), signer=Claiming(), source_vault_id="forged")


def genuine_backup(cli, tmp_path: Path, *extra: str, env: dict | None = None) -> Path:
    out = tmp_path / f"genuine{len(list(tmp_path.glob('genuine*')))}.ztb"
    result = cli("vault", "backup", "--output", str(out), *extra, env=env)
    assert result.code == 0, result.err
    return out


# --- B1: signed backups -------------------------------------------------------------------
def test_b1_forged_x25519_backup_with_only_the_recipient_string_is_refused(cli, zt_env, initialized, tmp_path):
    recipient, ident = keygen(cli, tmp_path)
    assert cli("vault", "put", "db/password", input=b"the-real-one").code == 0
    genuine_backup(cli, tmp_path, "--recipient", recipient)  # the installation's signing key exists now
    victim_pub = initialized / "signing.pub"
    from zerotrust_admin.signing import PublicKey

    victim_id = PublicKey.from_file(victim_pub).key_id
    attack = chosen_records(b"attacker's totp seed")
    forged = {"v1-unsigned": tmp_path / "f1.ztb", "v2-own-key": tmp_path / "f2.ztb", "v2-claims-victim-id": tmp_path / "f3.ztb"}
    forge_unsigned_v1(recipient, attack, forged["v1-unsigned"])
    forge_signed(recipient, attack, forged["v2-own-key"], signer_from_seed(MALLORY_SEED))
    forge_signed(recipient, attack, forged["v2-claims-victim-id"], signer_from_seed(MALLORY_SEED), claim_key_id=victim_id)
    host2 = second_home(cli, tmp_path)
    for what, path in forged.items():
        for trust in (["--signer", str(victim_pub)], []):  # the pinned key, or host2's own
            result = cli("vault", "restore", str(path), "--identity", str(ident), *trust, env=host2)
            assert result.code == 5, (what, trust, result.code, result.err)
            assert result.err.count("error:") == 1, result.err
            assert names_in(zt_env, host2) == [], what


def test_b1_backup_signed_by_another_installation_needs_its_signer(cli, zt_env, initialized, tmp_path):
    assert cli("vault", "put", "db/password", input=b"v1").code == 0
    recipient, ident = keygen(cli, tmp_path)
    backup = genuine_backup(cli, tmp_path, "--recipient", recipient)
    host2 = second_home(cli, tmp_path)  # another installation, with its own signing key
    assert cli("vault", "put", "host2/own", input=b"x", env=host2).code == 0
    assert cli("vault", "backup", "--output", str(tmp_path / "host2.ztb"), env={**host2, **PASS}).code == 0
    host3 = second_home(cli, tmp_path, "host3")
    without = cli("vault", "restore", str(backup), "--identity", str(ident), env=host3)
    assert without.code == 5 and ("signed by key" in without.err or "no trusted signing key" in without.err), without.err
    assert names_in(zt_env, host3) == []
    other = cli("vault", "restore", str(backup), "--identity", str(ident), "--signer",
                str(Path(host2["ZEROTRUST_HOME"]) / "signing.pub"), env=host3)
    assert other.code == 5 and "signed by key" in other.err, other.err
    assert names_in(zt_env, host3) == []
    ok = cli("vault", "restore", str(backup), "--identity", str(ident), "--signer", str(initialized / "signing.pub"), "--json", env=host3)
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["signed"] is True
    assert cli("vault", "get", "db/password", env=host3).out == b"v1"


def test_b1_flipped_or_replaced_signature_is_refused(cli, zt_env, initialized, tmp_path):
    assert cli("vault", "put", "db/password", input=b"v1").code == 0
    recipient, ident = keygen(cli, tmp_path)
    data = genuine_backup(cli, tmp_path, "--recipient", recipient).read_bytes()
    host2 = second_home(cli, tmp_path)
    signer = ["--signer", str(initialized / "signing.pub")]
    from zerotrust_admin.crypto.ed25519 import ed25519_sign

    body = data[:-64]
    variants = {
        "first signature byte": data[:-64] + bytes([data[-64] ^ 1]) + data[-63:],
        "last signature byte": data[:-1] + bytes([data[-1] ^ 0x80]),
        "signature stripped": body,
        "signature zeroed": body + bytes(64),
        "re-signed by another key": body + ed25519_sign(MALLORY_SEED, b"zerotrust-admin backup v2 signature\n" + hashlib.sha256(body).digest()),
        "a byte appended": data + b"\x00",
    }
    bad = tmp_path / "bad.ztb"
    for what, blob in variants.items():
        bad.write_bytes(blob)
        result = cli("vault", "restore", str(bad), "--identity", str(ident), *signer, env=host2)
        assert result.code == 5, (what, result.err)
        assert names_in(zt_env, host2) == [], what
    bad.write_bytes(data)
    assert cli("vault", "restore", str(bad), "--identity", str(ident), *signer, env=host2).code == 0


def test_b1_unsigned_format_1_needs_allow_unsigned_and_is_audited(cli, zt_env, initialized, tmp_path):
    from zerotrust_admin.vault.backup import identity_file_text

    ident = tmp_path / "kat.id"
    ident.write_text(identity_file_text(bytes(range(1, 33))))
    ident.chmod(0o600)
    v1 = VECTORS / "backup-v1-x25519.ztb"
    refused = cli("vault", "restore", str(v1), "--identity", str(ident))
    assert refused.code == 5 and "unsigned" in refused.err and "--allow-unsigned" in refused.err
    assert names_in(zt_env, {}) == []
    ok = cli("vault", "restore", str(v1), "--identity", str(ident), "--allow-unsigned")
    assert ok.code == 0, ok.err
    assert "warning" in ok.err and "UNSIGNED" in ok.err
    assert cli("vault", "get", "db/password").out == b"second\x00\xff"
    restores = [r for r in audit_records(initialized) if r["event"] == "backup" and r["action"] == "restore"]
    assert [(r["success"], r["details"].get("unsigned")) for r in restores] == [(False, None), (True, True)]
    assert restores[-1]["level"] == "warning" and restores[-1]["details"]["signed"] is False


def _plant_signing_pub(home: Path, seed: bytes) -> bytes:
    """Attacker (b): replace signing.pub by the attacker's own public key; returns the original."""
    from zerotrust_admin.crypto.ed25519 import ed25519_public
    from zerotrust_admin.signing import PublicKey

    original = (home / "signing.pub").read_bytes()
    (home / "signing.pub").write_text(PublicKey(ed25519_public(seed)).text())
    return original


def test_b1_planted_signing_pub_does_not_choose_the_trusted_key(cli, zt_env, tmp_path):
    """The red team's reproduction: a forged backup signed by the attacker's key
    and the attacker's signing.pub planted in the victim's home. Was: exit 5 but
    the forged rows committed, `vault get` then returned them (exit 0), no
    restore record, `audit verify` OK, and --dry-run said "Backup OK"."""
    victim = second_home(cli, tmp_path, "victim")
    home = Path(victim["ZEROTRUST_HOME"])
    recipient, ident = keygen(cli, tmp_path)
    forged = tmp_path / "forged.ztb"
    forge_signed(recipient, chosen_records(b"attacker's totp seed"), forged, signer_from_seed(MALLORY_SEED))
    original = _plant_signing_pub(home, MALLORY_SEED)
    for extra in (["--dry-run"], []):
        result = cli("vault", "restore", str(forged), "--identity", str(ident), *extra, env=victim)
        assert result.code == 5, (extra, result.code, result.err)
        assert "Backup OK" not in result.err and "does not belong" in result.err, result.err
    (home / "signing.pub").write_bytes(original)  # the attacker puts it back
    assert names_in(zt_env, victim) == []  # neither the value nor alice's MFA seed went in
    got = cli("vault", "get", "db/password", env=victim)
    assert got.code == 3 and got.out == b"", got.err
    assert cli("audit", "verify", env=victim).code == 0


def test_b1_signing_pub_alone_is_not_the_installation_key(cli, zt_env, tmp_path):
    """Without signing.key the file signing.pub is only a claim: restore without
    --signer has no trusted key (exit 5), whatever signing.pub says."""
    victim = second_home(cli, tmp_path, "victim")
    home = Path(victim["ZEROTRUST_HOME"])
    recipient, ident = keygen(cli, tmp_path)
    forged = tmp_path / "forged.ztb"
    forge_signed(recipient, chosen_records(b"seed"), forged, signer_from_seed(MALLORY_SEED))
    (home / "signing.key").rename(tmp_path / "signing.key.away")
    _plant_signing_pub(home, MALLORY_SEED)
    for extra in (["--dry-run"], []):
        result = cli("vault", "restore", str(forged), "--identity", str(ident), *extra, env=victim)
        assert result.code == 5, (extra, result.err)
        assert "Backup OK" not in result.err
    assert names_in(zt_env, victim) == []
    from zerotrust_admin.errors import NotFoundError
    from zerotrust_admin.signing import own_public_key

    with pytest.raises(NotFoundError):
        own_public_key(None, home, derived_only=True)


def test_b1_restore_record_is_written_before_commit(cli, zt_env, initialized, tmp_path):
    """A genuine backup, trusted through --signer, into a home whose audit writer
    cannot sign (its signing.pub was replaced): the restore's audit record cannot
    be written, so the restore rolls back and nothing is restored."""
    assert cli("vault", "put", "db/password", input=b"genuine").code == 0
    recipient, ident = keygen(cli, tmp_path)
    backup = genuine_backup(cli, tmp_path, "--recipient", recipient)
    host2 = second_home(cli, tmp_path)
    home2 = Path(host2["ZEROTRUST_HOME"])
    signer = ["--signer", str(initialized / "signing.pub")]
    original = _plant_signing_pub(home2, MALLORY_SEED)
    before = (home2 / "audit.log").read_bytes()
    result = cli("vault", "restore", str(backup), "--identity", str(ident), *signer, env=host2)
    assert result.code == 5, result.err
    (home2 / "signing.pub").write_bytes(original)
    assert names_in(zt_env, host2) == []
    assert (home2 / "audit.log").read_bytes() == before
    assert cli("vault", "get", "db/password", env=host2).code == 3
    ok = cli("vault", "restore", str(backup), "--identity", str(ident), *signer, env=host2)
    assert ok.code == 0, ok.err
    restores = [r for r in audit_records(home2) if r["event"] == "backup" and r["action"] == "restore"]
    assert [r["success"] for r in restores] == [True]
    assert restores[0]["details"]["vault"]["generation"] >= 1  # appended inside the write transaction (details.vault)
    assert cli("audit", "verify", env=host2).code == 0
    assert cli("vault", "get", "db/password", env=host2).out == b"genuine"


# --- B2: backups under policy -------------------------------------------------------------
def test_b2_deny_rule_on_backup_refuses_and_writes_nothing(cli, initialized, tmp_path):
    env = write_config(tmp_path, {"principals": [ALICE], "resources": ["vault/*"], "actions": ["backup"], "effect": "deny"}, EVERYONE_ALL)
    assert cli("vault", "put", "db/password", input=b"v", env=env).code == 0
    out = tmp_path / "b.ztb"
    result = cli("vault", "backup", "--output", str(out), env={**env, **PASS})
    assert result.code == 4, result.err
    assert "backup" in result.err and not out.exists() and not list(tmp_path.glob(".b.ztb*"))
    denied = [r for r in audit_records(initialized) if r["event"] == "access_denied" and r["action"] == "backup"]
    assert denied and denied[-1]["resource"].startswith("vault/")


def test_b2_restore_needs_the_restore_action(cli, zt_env, initialized, tmp_path):
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    backup = genuine_backup(cli, tmp_path, env=PASS)
    host2 = second_home(cli, tmp_path)
    env = write_config(tmp_path, {"principals": ["*"], "resources": ["vault/*"], "actions": ["restore"], "effect": "deny"}, EVERYONE_ALL)
    result = cli("vault", "restore", str(backup), "--signer", str(initialized / "signing.pub"), env={**host2, **env, **PASS})
    assert result.code == 4 and "restore" in result.err
    assert names_in(zt_env, host2) == []


def test_b2_a_secret_the_principal_may_list_but_not_read_refuses_the_backup(cli, initialized, tmp_path):
    env = write_config(tmp_path, {"principals": [ALICE], "secrets": ["hr/*"], "actions": ["list", "write"], "effect": "allow"},
                       {"principals": [ALICE], "secrets": ["app/*"], "actions": ["read", "write"], "effect": "allow"},
                       {"principals": [ALICE], "resources": ["vault/*"], "actions": ["backup"], "effect": "allow"})
    for name in ("app/one", "hr/salaries"):
        assert cli("vault", "put", name, input=b"v", env=env).code == 0
    out = tmp_path / "b.ztb"
    result = cli("vault", "backup", "--output", str(out), env={**env, **PASS})
    assert result.code == 4, result.err
    assert "hr/salaries" in result.err and "nothing was written" in result.err and not out.exists()
    denied = [r for r in audit_records(initialized) if r["event"] == "access_denied" and r["resource"] == "hr/salaries"]
    assert denied[-1]["details"]["operation"] == "backup" and denied[-1]["details"]["denied"] == 1


def test_b2_a_secret_the_principal_may_not_see_is_left_out_and_counted(cli, zt_env, initialized, tmp_path):
    env = write_config(tmp_path, {"principals": [ALICE], "secrets": ["hr/*"], "actions": ["read"], "effect": "deny"}, EVERYONE_ALL)
    for name in ("app/one", "hr/salaries"):
        assert cli("vault", "put", name, input=b"v", env=env).code == 0
    out = tmp_path / "b.ztb"
    result = cli("vault", "backup", "--output", str(out), "--json", env={**env, **PASS})
    assert result.code == 0, result.err
    assert json.loads(result.out)["secrets"] == 1 and json.loads(result.out)["left_out"]["hidden"] == 1
    host2 = second_home(cli, tmp_path)
    assert cli("vault", "restore", str(out), "--signer", str(initialized / "signing.pub"), env={**host2, **PASS}).code == 0
    assert names_in(zt_env, host2) == ["app/one"]


def test_b2_sensitive_secret_needs_one_mfa_code(cli, initialized, tmp_path):
    seed = enrol(cli)
    for name in ("pci/a", "pci/b"):
        assert cli("vault", "put", name, "--sensitive", input=b"4111").code == 0
    out = tmp_path / "b.ztb"
    no_code = cli("vault", "backup", "--output", str(out), env=PASS)
    assert no_code.code == 4 and "MFA" in no_code.err and not out.exists()
    ok = cli("vault", "backup", "--output", str(out), "--json", env={**PASS, **fresh_code(seed)})
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["secrets"] == 2


def test_b2_mfa_seeds_are_left_out_without_the_flag(cli, zt_env, initialized, tmp_path):
    enrol(cli)
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    result = cli("vault", "backup", "--output", str(tmp_path / "b.ztb"), "--json", env=PASS)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["secrets"] == 1 and report["left_out"]["reserved"] == 1
    text = cli("vault", "backup", "--output", str(tmp_path / "c.ztb"), env=PASS)
    assert "Left out 1 MFA seed" in text.err and "--include-mfa-seeds" in text.err
    host2 = second_home(cli, tmp_path)
    ok = cli("vault", "restore", str(tmp_path / "b.ztb"), "--signer", str(initialized / "signing.pub"), env={**host2, **PASS})
    assert ok.code == 0, ok.err
    assert names_in(zt_env, host2) == ["db/password"]
    assert json.loads(cli("mfa", "status", "--json", env=host2).out)["enrolled"] is False


def test_b2_mfa_seeds_included_with_the_flag_and_the_mfa_action(cli, zt_env, initialized, tmp_path):
    seed = enrol(cli)
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    out = tmp_path / "b.ztb"
    # No policies configured: the single-host default never allows the mfa action.
    default = cli("vault", "backup", "--output", str(out), "--include-mfa-seeds", env={**PASS, **fresh_code(seed)})
    assert default.code == 4 and "mfa" in default.err and not out.exists()
    no_mfa = write_config(tmp_path, {"principals": [ALICE], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"},
                          {"principals": [ALICE], "resources": ["vault/*"], "actions": ["backup", "restore"], "effect": "allow"})
    refused = cli("vault", "backup", "--output", str(out), "--include-mfa-seeds", env={**no_mfa, **PASS})
    assert refused.code == 4 and "mfa" in refused.err and not out.exists()
    admin = write_config(tmp_path, EVERYONE_ALL, name="admin.yaml")
    no_code = cli("vault", "backup", "--output", str(out), "--include-mfa-seeds", env={**admin, **PASS})
    assert no_code.code == 4 and "MFA" in no_code.err and not out.exists()  # seeds are sensitive secrets: one code
    result = cli("vault", "backup", "--output", str(out), "--include-mfa-seeds", "--json", env={**admin, **PASS, **fresh_code(seed)})
    assert result.code == 0, result.err
    assert json.loads(result.out)["left_out"]["reserved"] == 0 and json.loads(result.out)["secrets"] == 2
    host2 = second_home(cli, tmp_path)
    signer = ["--signer", str(initialized / "signing.pub")]
    # Restoring seeds re-enrols those principals: it needs the mfa action too.
    only_restore = cli("vault", "restore", str(out), *signer, env={**host2, **no_mfa, **PASS})
    assert only_restore.code == 4 and names_in(zt_env, host2) == []
    ok = cli("vault", "restore", str(out), *signer, env={**host2, **admin, **PASS})
    assert ok.code == 0, ok.err
    assert json.loads(cli("mfa", "status", "--json", env=host2).out)["enrolled"] is True
    verify = cli("mfa", "verify", "--otp-stdin", input=fresh_code(seed)["ZEROTRUST_OTP"].encode() + b"\n", env=host2)
    assert verify.code == 0, verify.err  # the same authenticator works on the restored host


# --- B3: bounds before work ---------------------------------------------------------------
def with_header(data: bytes, new: bytes) -> bytes:
    header_len = struct.unpack(">I", data[10:14])[0]
    pre = data[:10] + struct.pack(">I", len(new))
    wrapped = data[14 + header_len:14 + header_len + 64]
    return pre + new + wrapped + hashlib.sha256(pre + new + wrapped).digest() + data[14 + header_len + 64 + 32:]


def rewrite_header(data: bytes, edit) -> bytes:
    """What attacker (b) can do without any key: edit the header JSON, fix the
    preamble's length and the unkeyed checksum."""
    header_len = struct.unpack(">I", data[10:14])[0]
    header = json.loads(data[14:14 + header_len])
    edit(header)
    return with_header(data, json.dumps(header, sort_keys=True, separators=(",", ":")).encode())


@pytest.mark.parametrize("log2_n", [22, 30])
def test_b3_unbounded_scrypt_work_factor_fails_fast(cli, zt_env, initialized, tmp_path, log2_n):
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    data = genuine_backup(cli, tmp_path, env=PASS).read_bytes()
    host2 = second_home(cli, tmp_path)
    signer = ["--signer", str(initialized / "signing.pub")]
    bad = tmp_path / "bad.ztb"
    bad.write_bytes(rewrite_header(data, lambda h: h["kek"]["kdf"].update(n=2**log2_n)))
    for extra in ([], ["--allow-unsigned"], ["--dry-run"]):
        started = time.monotonic()
        result = cli("vault", "restore", str(bad), *signer, *extra, env={**host2, **PASS})
        elapsed = time.monotonic() - started
        assert result.code == 5, result.err
        assert f"N={2**log2_n}" in result.err and result.err.count("error:") == 1
        assert elapsed < 2.0, f"{elapsed:.2f} s"
    # r and p too: only r=8, p=1.
    bad.write_bytes(rewrite_header(data, lambda h: h["kek"]["kdf"].update(r=1024)))
    assert cli("vault", "restore", str(bad), *signer, env={**host2, **PASS}).code == 5
    # Format 1 (unsigned, read only with --allow-unsigned) is bounded the same way.
    v1 = bytearray(rewrite_header((VECTORS / "backup-v1-passphrase.ztb").read_bytes(), lambda h: h["kek"]["kdf"].update(n=2**log2_n)))
    bad.write_bytes(bytes(v1))
    started = time.monotonic()
    result = cli("vault", "restore", str(bad), "--allow-unsigned", env={**host2, "ZEROTRUST_BACKUP_PASSPHRASE": "known-answer passphrase"})
    assert result.code == 5 and time.monotonic() - started < 2.0, result.err
    assert names_in(zt_env, host2) == []


def test_b3_oversized_header_chunk_and_record_lengths_fail_before_allocating(cli, zt_env, initialized, tmp_path):
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    recipient, ident = keygen(cli, tmp_path)
    data = genuine_backup(cli, tmp_path, "--recipient", recipient).read_bytes()
    host2 = second_home(cli, tmp_path)
    args = ["--identity", str(ident), "--signer", str(initialized / "signing.pub")]
    header_len = struct.unpack(">I", data[10:14])[0]
    first_chunk = 14 + header_len + 4 + 60 + 32
    variants = {
        "header length 4 GiB": data[:10] + b"\xff\xff\xff\xff" + data[14:],
        "header length 1 MiB": data[:10] + struct.pack(">I", 1 << 20) + data[14:] + bytes(1 << 20),
        "wrapped key length 2 GiB": data[:14 + header_len] + b"\x7f\xff\xff\xff" + data[14 + header_len + 4:],
        "chunk length 4 GiB": data[:first_chunk + 1] + b"\xff\xff\xff\xf0" + data[first_chunk + 5:],
        "deeply nested header": with_header(data, b"[" * 5000 + b"]" * 5000),
    }
    bad = tmp_path / "bad.ztb"
    for what, blob in variants.items():
        bad.write_bytes(blob)
        started = time.monotonic()
        result = cli("vault", "restore", str(bad), *args, env=host2)
        assert result.code == 5, (what, result.err)
        assert result.err.count("error:") == 1 and "internal error" not in result.err, (what, result.err)
        assert time.monotonic() - started < 2.0, what
    # Records outside the payload schema (here in an unsigned file the operator chose to accept): exit 5, not a crash.
    for records in ([{"type": "secret", "name": "x"}] * 2, [{"type": "version", "name": "../x", "version": "1"}] * 2):
        forge_unsigned_v1(recipient, records, bad)
        result = cli("vault", "restore", str(bad), "--allow-unsigned", *args, env=host2)
        assert result.code == 5 and "internal error" not in result.err, result.err
    assert names_in(zt_env, host2) == []


def _sparse_append(path: Path, extra: int) -> None:
    """Attacker (b) pads a backup with a sparse tail (no disk used)."""
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size + extra)


def _walkable_padding(data: bytes, out: Path, size: int) -> None:
    """The red team's file: a genuine header, then `size` bytes of well-framed
    non-final chunks of zeros (sparse on disk), then the genuine chunks and
    signature. A reader that walks before deciding hashes all of it."""
    header_len = struct.unpack(">I", data[10:14])[0]
    body_at = 14 + header_len + 4 + 60 + 32
    frame = struct.pack(">BI", 0, 65536 + 28)
    with open(out, "wb") as fh:
        fh.write(data[:body_at])
        for _ in range(size // (65536 + 33)):
            fh.write(frame)
            fh.seek(65536 + 28, 1)
        fh.write(data[body_at:])


GIB = 1 << 30


def test_b3_another_signer_is_refused_from_the_header_before_the_walk(cli, zt_env, initialized, tmp_path):
    """The red team: "signed by key X, not by the trusted key Y" came only after
    hashing the whole file (1 GiB: 3.75 s). Now it is the header's call."""
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    data = genuine_backup(cli, tmp_path, env=PASS).read_bytes()
    big = tmp_path / "big.ztb"
    _walkable_padding(data, big, 2 * GIB)
    host2 = second_home(cli, tmp_path)  # its own key is not the one that signed
    for extra in (["--dry-run"], []):
        started = time.monotonic()
        result = cli("vault", "restore", str(big), *extra, env={**host2, **PASS})
        elapsed = time.monotonic() - started
        assert result.code == 5 and "not by the trusted key" in result.err, result.err
        assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_b3_file_size_is_fixed_by_the_header_before_reading(cli, zt_env, initialized, tmp_path):
    """payload_bytes in the header fixes the chunk count and the file's exact
    size: 2 GiB of well-framed chunks inserted, or a sparse tail, or a cut file
    is refused before the body is read (was: the whole file hashed first)."""
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    data = genuine_backup(cli, tmp_path, env=PASS).read_bytes()
    host2 = second_home(cli, tmp_path)
    signer = ["--signer", str(initialized / "signing.pub")]  # the right key: only the size can stop it early
    bad = tmp_path / "bad.ztb"
    _walkable_padding(data, bad, 2 * GIB)
    for pad in (None, 2 * GIB):
        if pad:
            bad.write_bytes(data)
            _sparse_append(bad, pad)
        started = time.monotonic()
        result = cli("vault", "restore", str(bad), *signer, env={**host2, **PASS})
        assert result.code == 5 and "header declares" in result.err, result.err
        assert time.monotonic() - started < 2.0
    header_len = struct.unpack(">I", data[10:14])[0]
    declared = json.loads(data[14:14 + header_len])["payload_bytes"]
    variants = {
        "cut by one byte": data[:-65] + data[-64:],
        "payload_bytes missing": rewrite_header(data, lambda h: h.pop("payload_bytes")),
        "payload_bytes a string": rewrite_header(data, lambda h: h.update(payload_bytes=str(declared))),
        "payload_bytes over 2^40": rewrite_header(data, lambda h: h.update(payload_bytes=(1 << 40) + 1)),
        "payload_bytes one more, a byte appended": rewrite_header(data, lambda h: h.update(payload_bytes=declared + 1))[:-64] + b"\0" + data[-64:],
    }
    for what, blob in variants.items():
        bad.write_bytes(blob)
        result = cli("vault", "restore", str(bad), *signer, env={**host2, **PASS})
        assert result.code == 5 and result.err.count("error:") == 1 and "internal error" not in result.err, (what, result.err)
    assert names_in(zt_env, host2) == []
    bad.write_bytes(data)
    assert cli("vault", "restore", str(bad), *signer, env={**host2, **PASS}).code == 0

"""The vault format is documented well enough to decrypt by hand, and pinned.

1. docs/examples/decrypt_vault.py (sqlite3 + cryptography only, <= 40 lines of
   code) decrypts a vault the CLI wrote: every version of every secret.
2. Known-answer vectors (tests/vectors/vault_v1.json): the AAD layouts, the
   sealed bytes for fixed nonces, the key check value and the scrypt KDF; and
   (tests/vectors/vault_v2.json) every format-2 MAC input and the commitment.
   Any change to the format breaks this test.
3. A format-1 file built from the v1 vectors opens, is upgraded in place to
   format 2 (audited), and reads back every value.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zerotrust_admin.crypto import ScryptParams, derive_key, open_sealed, seal
from zerotrust_admin.keys.raw import decode_key_text
from zerotrust_admin.vault import format as fmt

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "examples" / "decrypt_vault.py"
VECTORS = json.loads((Path(__file__).parent / "vectors" / "vault_v1.json").read_text())
VECTORS2 = json.loads((Path(__file__).parent / "vectors" / "vault_v2.json").read_text())


def run_script(vault: Path, key_arg: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # -I: isolated mode, so the script cannot pick zerotrust_admin up from the CWD or PYTHONPATH.
    return subprocess.run([sys.executable, "-I", str(SCRIPT), str(vault), key_arg], capture_output=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), **(env or {})}, cwd=str(vault.parent))


def test_script_is_small_and_independent():
    source = SCRIPT.read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"base64", "hashlib", "hmac", "json", "os", "sqlite3", "sys", "cryptography"}, imported
    docstring = set(range(tree.body[0].lineno, tree.body[0].end_lineno + 1))
    code = [line for i, line in enumerate(source.splitlines(), 1)
            if i not in docstring and line.strip() and not line.strip().startswith("#")]
    assert len(code) <= 40, len(code)


@pytest.fixture
def written_vault(cli, initialized, tmp_path):
    """A vault written through the CLI with every kind of record; returns (home, expected)."""
    keytab = os.urandom(1500)
    (tmp_path / "kt").write_bytes(keytab)
    steps = [
        (("vault", "put", "db/password"), b"s3cr3t"),
        (("vault", "put", "db/password", "--meta", "owner=dba", "--meta", "ticket=OPS-1"), b"rotated\n"),
        (("vault", "put", "krb/host.keytab", "--value-file", str(tmp_path / "kt")), b""),
        (("vault", "put", "app/gone"), b"soft-deleted-value"),
        (("vault", "delete", "app/gone", "--yes"), b""),
        (("vault", "put", "app/destroyed"), b"destroyed-value"),
        (("vault", "delete", "app/destroyed", "--destroy", "--yes"), b""),
    ]
    for args, stdin in steps:
        result = cli(*args, input=stdin)
        assert result.code == 0, (args, result.err)
    imported = {f"bulk/k{i:02d}": f"value-{i}-{'x' * i}" for i in range(20)}
    assert cli("vault", "import", "-", "--format", "json", input=json.dumps(imported).encode()).code == 0
    expected = {
        ("db/password", 1): (b"s3cr3t", {}, False, False),
        ("db/password", 2): (b"rotated\n", {"owner": "dba", "ticket": "OPS-1"}, True, False),
        ("krb/host.keytab", 1): (keytab, {}, True, False),
        ("app/gone", 1): (b"soft-deleted-value", {}, True, True),
    }
    expected.update({(name, 1): (value.encode(), {}, True, False) for name, value in imported.items()})
    return initialized, expected


def _decoded(stdout: bytes) -> dict:
    out = {}
    for line in stdout.decode().splitlines():
        rec = json.loads(line)
        out[(rec["name"], rec["version"])] = (base64.b64decode(rec["value_base64"]), rec["metadata"], rec["current"], rec["deleted"])
    return out


def test_script_decrypts_every_secret_the_cli_wrote(cli, written_vault):
    home, expected = written_vault
    result = run_script(home / "vault.db", str(home / "master.key"))
    assert result.returncode == 0, result.stderr.decode()
    assert _decoded(result.stdout) == expected
    # And the CLI agrees with the script: current values via export, older versions via get.
    exported = json.loads(cli("vault", "export", "--format", "json", "--yes").out)["secrets"]
    current = {name: (base64.b64decode(e["value_base64"]) if "value_base64" in e else e["value"].encode()) for name, e in exported.items()}
    assert current == {name: value for (name, _v), (value, _m, is_current, deleted) in expected.items() if is_current and not deleted}
    assert cli("vault", "get", "db/password", "--version", "1").out == b"s3cr3t"


def test_script_refuses_a_wrong_key(initialized, tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_text(base64.b64encode(os.urandom(32)).decode())
    result = run_script(initialized / "vault.db", str(wrong))
    assert result.returncode != 0 and result.stdout == b""


def test_script_decrypts_a_passphrase_vault(tmp_path):
    # Library-built with a low scrypt N (the CLI always uses N=2**17): the
    # script must honour whatever parameters the vault records.
    from zerotrust_admin.keys import KeySourceContext
    from zerotrust_admin.keys.passphrase import PassphraseSource
    from zerotrust_admin.vault import Vault

    env = {"ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    ctx = KeySourceContext(config={}, home=tmp_path, environ=env)
    with Vault.create(tmp_path / "vault.db", "passphrase", lambda key_id: PassphraseSource.create(ctx, key_id, scrypt_n=2**11)) as vault:
        vault.put("p/one", b"behind a passphrase")
    result = run_script(tmp_path / "vault.db", "-", env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert _decoded(result.stdout) == {("p/one", 1): (b"behind a passphrase", {}, True, False)}
    wrong = run_script(tmp_path / "vault.db", "-", env={"ZEROTRUST_PASSPHRASE": "wrong horse battery staple"})
    assert wrong.returncode != 0 and wrong.stdout == b""


# --- known-answer vectors -----------------------------------------------------------
def _hand_aad(*parts) -> bytes:
    """The documented layout, written independently of format.py."""
    return b"\x00".join(str(p).encode("utf-8") for p in parts)


def _hand_fields(*parts) -> bytes:
    """The documented format-2 MAC framing, written independently of format.py:
    NULL = 0x00; text = 0x01, 4-byte big-endian UTF-8 length, the UTF-8 bytes."""
    out = b""
    for p in parts:
        if p is None:
            out += b"\x00"
        else:
            data = str(p).encode("utf-8")
            out += b"\x01" + len(data).to_bytes(4, "big") + data
    return out


def test_v2_framing_tells_null_from_empty_and_fields_from_nul_bytes():
    """F10/F11: NULL and '' differ; a value holding NUL bytes never equals more fields."""
    assert fmt._fields(None) != fmt._fields("")
    assert fmt._fields("a\x00b", "c") != fmt._fields("a", "b\x00c") != fmt._fields("a", "b", "c")
    assert fmt.meta_mac_input("v", {"created": "T\x00dek_rotated\x00T2"}) != fmt.meta_mac_input("v", {"created": "T", "dek_rotated": "T2"})
    args = ("v", "n", "i", 1, False, "c", "u")
    assert fmt.head_mac_input_v2(*args, None, None) != fmt.head_mac_input_v2(*args, "", None)
    import pytest as _pytest

    with _pytest.raises(TypeError):
        fmt._fields(b"blob")
    assert fmt.bucket_digest([(b"zz/z", "00")]) == fmt.BAD_BUCKET_DIGEST
    assert fmt.bucket_digest([("a\x00" + "m1" + "\n" + "b", "m2")]) != fmt.bucket_digest([("a", "m1"), ("b", "m2")])


def test_vector_master_key_file_text():
    key = decode_key_text(VECTORS["key_file_text"].encode(), "vector key")
    assert key.reveal().hex() == VECTORS["master_key_hex"]


def test_vector_key_check_value():
    master = bytes.fromhex(VECTORS["master_key_hex"])
    kcv = VECTORS["kcv"]
    aad = fmt.kcv_aad(VECTORS["vault_id"], VECTORS["master_key_id"])
    assert aad.hex() == kcv["aad_hex"] == _hand_aad("zt-kcv-v1", VECTORS["vault_id"], VECTORS["master_key_id"]).hex()
    assert fmt.KCV_PLAINTEXT.hex() == kcv["plaintext_hex"]
    sealed = seal(master, fmt.KCV_PLAINTEXT, aad, nonce=bytes.fromhex(kcv["nonce_hex"]))
    assert sealed.hex() == kcv["sealed_hex"]


def test_vector_data_keys():
    master = bytes.fromhex(VECTORS["master_key_hex"])
    for dek in VECTORS["deks"]:
        aad = fmt.dek_aad(VECTORS["vault_id"], dek["id"], VECTORS["master_key_id"])
        assert aad.hex() == dek["aad_hex"] == _hand_aad("zt-dek-v1", VECTORS["vault_id"], dek["id"], VECTORS["master_key_id"]).hex()
        wrapped = seal(master, bytes.fromhex(dek["key_hex"]), aad, nonce=bytes.fromhex(dek["nonce_hex"]))
        assert wrapped.hex() == dek["wrapped_hex"]
        assert open_sealed(master, wrapped, aad).hex() == dek["key_hex"]


def test_vector_secrets():
    keys = {d["id"]: bytes.fromhex(d["key_hex"]) for d in VECTORS["deks"]}
    for s in VECTORS["secrets"]:
        assert json.dumps(s["metadata"], sort_keys=True, separators=(",", ":")) == s["metadata_json"]
        aad = fmt.secret_aad(VECTORS["vault_id"], s["name"], s["version"], s["dek_id"], s["metadata_json"])
        assert aad.hex() == s["aad_hex"]
        assert aad == _hand_aad("zt-secret-v1", VECTORS["vault_id"], s["name"], s["version"], s["dek_id"], s["metadata_json"])
        sealed = seal(keys[s["dek_id"]], bytes.fromhex(s["value_hex"]), aad, nonce=bytes.fromhex(s["nonce_hex"]))
        assert sealed.hex() == s["sealed_hex"]
        # The blob layout: nonce || ciphertext || 16-byte tag, readable with plain AESGCM.
        blob = bytes.fromhex(s["sealed_hex"])
        assert blob[:12].hex() == s["nonce_hex"] and len(blob) == 12 + len(s["value_hex"]) // 2 + 16
        assert AESGCM(keys[s["dek_id"]]).decrypt(blob[:12], blob[12:], aad).hex() == s["value_hex"]


def test_vector_binding_rejects_every_field_change():
    keys = {d["id"]: bytes.fromhex(d["key_hex"]) for d in VECTORS["deks"]}
    s = VECTORS["secrets"][1]
    blob = bytes.fromhex(s["sealed_hex"])
    fields = [VECTORS["vault_id"], s["name"], s["version"], s["dek_id"], s["metadata_json"]]
    for i in range(len(fields)):
        changed = list(fields)
        changed[i] = str(changed[i]) + "x"
        with pytest.raises(Exception):
            AESGCM(keys[s["dek_id"]]).decrypt(blob[:12], blob[12:], _hand_aad("zt-secret-v1", *changed))


def test_vector_secret_heads():
    import hashlib
    import hmac

    head = VECTORS["head"]
    master = bytes.fromhex(VECTORS["master_key_hex"])
    aad = fmt.head_key_aad(VECTORS["vault_id"], VECTORS["master_key_id"])
    assert aad.hex() == head["aad_hex"] == _hand_aad("zt-head-key-v1", VECTORS["vault_id"], VECTORS["master_key_id"]).hex()
    assert seal(master, bytes.fromhex(head["key_hex"]), aad, nonce=bytes.fromhex(head["nonce_hex"])).hex() == head["wrapped_hex"]
    for m in head["macs"]:
        data = fmt.head_mac_input(VECTORS["vault_id"], m["name"], m["current_version"], m["sensitive"], m["deleted_at"])
        assert data == _hand_aad("zt-head-v1", VECTORS["vault_id"], m["name"], m["current_version"], "1" if m["sensitive"] else "0", m["deleted_at"] or "")
        assert hmac.new(bytes.fromhex(head["key_hex"]), data, hashlib.sha256).hexdigest() == m["mac_hex"]


def test_vector_scrypt():
    v = VECTORS["scrypt"]
    params = ScryptParams.from_dict({k: v[k] for k in ("salt_hex", "n", "r", "p", "algorithm")})
    assert derive_key(v["passphrase"].encode(), params).hex() == v["key_hex"]
    assert ScryptParams.new().n == 2**17 and (ScryptParams.new().r, ScryptParams.new().p) == (8, 1)


def test_vector_schema_columns(tmp_path):
    conn = sqlite3.connect(":memory:")
    conn.executescript(fmt.SCHEMA_V1)
    for table, columns in VECTORS["tables"].items():
        assert [c[1] for c in conn.execute(f"PRAGMA table_info({table})")] == columns, table
    assert fmt.FORMAT_V1 == VECTORS["format"] == 1 and fmt.FORMAT_VERSION == VECTORS2["format"] == 2


# --- format 2 ----------------------------------------------------------------------
def _hmac(hexkey: str, data: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(bytes.fromhex(hexkey), data, hashlib.sha256).hexdigest()


def test_vector_v2_heads():
    v = VECTORS2
    for h in v["heads"]:
        data = fmt.head_mac_input_v2(v["vault_id"], h["name"], h["incarnation"], h["current_version"], h["sensitive"], h["created"],
                                     h["updated"], h["deleted_at"], h["deleted_by"])
        assert data == _hand_fields("zt-head-v2", v["vault_id"], h["name"], h["incarnation"], h["current_version"], "1" if h["sensitive"] else "0",
                                    h["created"], h["updated"], h["deleted_at"], h["deleted_by"])
        assert data.hex() == h["input_hex"] and _hmac(v["head_key_hex"], data) == h["mac_hex"]


def test_vector_v2_version_mac():
    import hashlib

    v, r = VECTORS2, VECTORS2["version"]
    sealed = bytes.fromhex(r["sealed_hex"])
    assert hashlib.sha256(sealed).hexdigest() == r["sealed_sha256_hex"]
    data = fmt.version_mac_input(v["vault_id"], r["name"], r["incarnation"], r["version"], r["dek_id"], r["created"], r["created_by"],
                                 r["size"], r["metadata_json"], r["sealed_sha256_hex"])
    assert data == _hand_fields("zt-version-v2", v["vault_id"], r["name"], r["incarnation"], r["version"], r["dek_id"], r["created"],
                             r["created_by"], r["size"], r["metadata_json"], r["sealed_sha256_hex"])
    assert data.hex() == r["input_hex"] and _hmac(v["head_key_hex"], data) == r["mac_hex"]


def test_vector_v2_key_records_and_meta():
    v = VECTORS2
    for d in v["deks"]:
        data = fmt.dek_record_mac_input(v["vault_id"], d["id"], d["master_key_id"], d["created"], d["state"])
        assert data == _hand_fields("zt-dek-record-v2", v["vault_id"], d["id"], d["master_key_id"], d["created"], d["state"])
        assert data.hex() == d["input_hex"] and _hmac(v["head_key_hex"], data) == d["mac_hex"]
    s = v["session_key"]
    data = fmt.session_key_record_mac_input(v["vault_id"], s["id"], s["master_key_id"], s["created"], s["state"])
    assert data == _hand_fields("zt-session-key-record-v2", v["vault_id"], s["id"], s["master_key_id"], s["created"], s["state"])
    assert data.hex() == s["input_hex"] and _hmac(v["head_key_hex"], data) == s["mac_hex"]
    m = v["meta"]
    data = fmt.meta_mac_input(v["vault_id"], {**m["records"], "meta_mac": "x", "commit": "y", "generation": "7"})  # those three are left out
    pairs = [x for k in sorted(m["records"]) for x in (k, m["records"][k])]
    assert data == _hand_fields("zt-meta-v2", v["vault_id"], *pairs)
    assert data.hex() == m["input_hex"] and _hmac(v["head_key_hex"], data) == m["mac_hex"]


def test_vector_v2_buckets():
    """bucket(name) = first byte of SHA-256("zt-bucket-v1" NUL vault_id NUL name); a bucket's
    digest = SHA-256 over the framed name, head_mac of its rows in name order; empty: SHA-256 of nothing."""
    import hashlib

    v, b = VECTORS2, VECTORS2["buckets"]
    assert b["empty_digest_hex"] == hashlib.sha256(b"").hexdigest() == fmt.EMPTY_BUCKET_DIGEST == fmt.bucket_digest([])
    for h in v["heads"]:
        data = _hand_aad("zt-bucket-v1", v["vault_id"], h["name"])
        assert data.hex() == h["bucket_input_hex"]
        assert hashlib.sha256(data).digest()[0] == h["bucket"] == fmt.bucket_of(v["vault_id"], h["name"])
    for bucket in b["non_empty"]:
        text = b"".join(_hand_fields(name, mac) for name, mac in bucket["rows"])
        assert text.hex() == bucket["input_hex"]
        assert hashlib.sha256(text).hexdigest() == bucket["digest_hex"] == fmt.bucket_digest([tuple(r) for r in bucket["rows"]])
        assert {h["name"]: h["mac_hex"] for h in v["heads"] if h["bucket"] == bucket["bucket"]} == dict(map(tuple, bucket["rows"]))


def test_vector_v2_commitment():
    import hashlib

    v, c = VECTORS2, VECTORS2["commit"]
    digests = {b["bucket"]: b["digest_hex"] for b in v["buckets"]["non_empty"]}
    macs = [digests.get(i, v["buckets"]["empty_digest_hex"]) for i in range(256)]
    macs += [d["mac_hex"] for d in sorted(v["deks"], key=lambda d: d["id"])] + [v["session_key"]["mac_hex"], v["meta"]["mac_hex"]]
    assert hashlib.sha256("".join(macs).encode("ascii")).hexdigest() == c["digest_hex"]
    data = fmt.commit_input(v["vault_id"], c["generation"], c["deks"], c["session_keys"], c["digest_hex"])
    assert data == _hand_fields("zt-commit-v2", v["vault_id"], c["generation"], c["deks"], c["session_keys"], c["digest_hex"])
    assert data.hex() == c["input_hex"] and _hmac(v["head_key_hex"], data) == c["mac_hex"]


def _build_v1_vault(path: Path) -> dict:
    """A format-1 file from the v1 vectors (the layout format 1 wrote), plus a session key table."""
    import hashlib
    import hmac

    conn = sqlite3.connect(path)
    conn.executescript(fmt.SCHEMA_V1)
    conn.execute(fmt.SESSION_KEYS_SCHEMA_V1)
    vid, mkid = VECTORS["vault_id"], VECTORS["master_key_id"]
    master = bytes.fromhex(VECTORS["master_key_hex"])
    meta = {"format": "1", "vault_id": vid, "created": "2026-11-28T16:00:00.000000Z", "master_source": "keyfile", "master_params": "{}",
            "master_key_id": mkid, "master_created": "2026-11-28T16:00:00.000000Z", "kcv": VECTORS["kcv"]["sealed_hex"], "head_key": VECTORS["head"]["wrapped_hex"]}
    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    for d, state in zip(VECTORS["deks"], ("retired", "active")):
        conn.execute("INSERT INTO deks VALUES (?, ?, ?, ?, ?)", (d["id"], bytes.fromhex(d["wrapped_hex"]), mkid, "2026-11-28T16:00:00.000000Z", state))
    session = seal(master, os.urandom(32), _hand_aad("zt-session-key-v1", vid, "5e5e5e5e5e5e5e5e", mkid))
    conn.execute("INSERT INTO session_keys VALUES (?, ?, ?, ?, 'current')", ("5e5e5e5e5e5e5e5e", session, mkid, "2026-11-28T16:00:00.000000Z"))
    current: dict = {}
    for s in VECTORS["secrets"]:
        conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (s["name"], s["version"], s["dek_id"], bytes.fromhex(s["sealed_hex"]),
                     "2026-11-28T16:00:00.000000Z", "alice@EXAMPLE.COM", len(s["value_hex"]) // 2, s["metadata_json"]))
        current[s["name"]] = max(current.get(s["name"], 0), s["version"])
    head_key = bytes.fromhex(VECTORS["head"]["key_hex"])
    for name, version in current.items():
        mac = hmac.new(head_key, _hand_aad("zt-head-v1", vid, name, version, "0", ""), hashlib.sha256).hexdigest()
        conn.execute("INSERT INTO secrets (name, current_version, sensitive, created, updated, head_mac) VALUES (?, ?, 0, ?, ?, ?)",
                     (name, version, "2026-11-28T16:00:00.000000Z", "2026-11-28T16:00:00.000000Z", mac))
    conn.commit()
    conn.close()
    os.chmod(path, 0o600)
    return {s["name"]: bytes.fromhex(s["value_hex"]) for s in VECTORS["secrets"] if s["version"] == current[s["name"]]}


def test_v1_file_is_upgraded_to_format_2_on_first_open(tmp_path):
    from zerotrust_admin.audit import AuditLog
    from zerotrust_admin.audit.log import Actor
    from zerotrust_admin.keys import KeySourceContext, open_source
    from zerotrust_admin.vault import Vault

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "master.key").write_text(VECTORS["key_file_text"])
    os.chmod(home / "master.key", 0o600)
    expected = _build_v1_vault(home / "vault.db")
    ctx = KeySourceContext(config={}, home=home, environ={})
    audit = AuditLog(home / "audit.log")
    with Vault.open(home / "vault.db", lambda kind, params: open_source(kind, ctx, params), audit=audit, actor=Actor("alice@EXAMPLE.COM", "127.0.0.1")) as vault:
        assert vault.meta["format"] == "2" and vault.generation == 1
        for name, value in expected.items():
            secret, info = vault.get(name)
            assert secret.reveal() == value and info.created_by == "alice@EXAMPLE.COM"
        assert [k.state for k in vault.session_keys()] == ["current"]
        assert {d.state for d in vault.list_deks()} == {"active", "retired"}
        vault.put("db/password", b"after the upgrade")
        assert vault.generation == 2
    records = [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]
    upgrade = next(r for r in records if r["event"] == "vault_upgrade")
    assert upgrade["success"] is True
    # The upgraded file is exactly a format-2 vault: the documented schema, verified by the reader script.
    conn = sqlite3.connect(home / "vault.db")
    from zerotrust_admin.vault.schema import read_schema, schema_problem

    assert schema_problem(read_schema(conn), 2) is None
    assert not [r for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'v1_%'")]
    conn.close()
    result = run_script(home / "vault.db", str(home / "master.key"))
    assert result.returncode == 0, result.stderr.decode()
    assert _decoded(result.stdout)[("db/password", 3)][0] == b"after the upgrade"


def test_v1_file_with_an_edited_head_is_not_upgraded(tmp_path, cli, zt_env):
    home = Path(zt_env["ZEROTRUST_HOME"])
    home.mkdir(mode=0o700)
    (home / "master.key").write_text(VECTORS["key_file_text"])
    os.chmod(home / "master.key", 0o600)
    _build_v1_vault(home / "vault.db")
    conn = sqlite3.connect(home / "vault.db")
    conn.execute("UPDATE secrets SET current_version = 1 WHERE name = 'db/password'")
    conn.commit()
    conn.close()
    result = cli("vault", "get", "krb/host.keytab")
    assert result.code == 5 and "cannot be upgraded" in result.err and result.out == b""
    conn = sqlite3.connect(home / "vault.db")
    assert dict(conn.execute("SELECT key, value FROM meta"))["format"] == "1"  # rolled back, nothing changed
    conn.close()

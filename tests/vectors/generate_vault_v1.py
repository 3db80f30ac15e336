"""Generate tests/vectors/vault_v1.json ONCE; the committed JSON is the pin.

Run from the repository root:  .venv/bin/python tests/vectors/generate_vault_v1.py
Do not regenerate to make tests/test_vault_format.py pass: a mismatch means the
vault format changed, which needs a new format version and a migration.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

from zerotrust_admin.crypto import ScryptParams, derive_key, seal
from zerotrust_admin.vault import format as fmt

MASTER_KEY = bytes(range(32))
VAULT_ID = "00112233445566778899aabbccddeeff"
MASTER_KEY_ID = "a1b2c3d4e5f60718"
DEKS = [("d0d1d2d3d4d5d6d7", bytes(range(0x40, 0x60))), ("e0e1e2e3e4e5e6e7", bytes(range(0x80, 0xA0)))]
SECRETS = [
    ("db/password", 1, "d0d1d2d3d4d5d6d7", {}, b"s3cr3t"),
    ("db/password", 2, "d0d1d2d3d4d5d6d7", {"owner": "dba", "rotated": "yes"}, b"rotated-value"),
    ("krb/host.keytab", 1, "e0e1e2e3e4e5e6e7", {}, b"\x05\x02\x00\x00\x00\x3b\xff\xfe\x00"),
    ("a/b.c_d-e/" + "x" * 40, 7, "e0e1e2e3e4e5e6e7", {"note": "caf\u00e9"}, "unicode \u2713".encode("utf-8")),
]


def nonce(i: int) -> bytes:
    return bytes([i]) * 12


def main() -> None:
    out: dict = {
        "description": "Known-answer vectors for vault format 1 (docs/vault-format.md). Nonces are fixed here only; the vault uses random ones.",
        "format": fmt.FORMAT_V1,
        "master_key_hex": MASTER_KEY.hex(),
        "key_file_text": base64.b64encode(MASTER_KEY).decode() + "\n",
        "vault_id": VAULT_ID,
        "master_key_id": MASTER_KEY_ID,
    }
    kcv_aad = fmt.kcv_aad(VAULT_ID, MASTER_KEY_ID)
    out["kcv"] = {"plaintext_hex": fmt.KCV_PLAINTEXT.hex(), "nonce_hex": nonce(1).hex(), "aad_hex": kcv_aad.hex(),
                  "sealed_hex": seal(MASTER_KEY, fmt.KCV_PLAINTEXT, kcv_aad, nonce=nonce(1)).hex()}
    out["deks"] = []
    for i, (dek_id, dek) in enumerate(DEKS, start=2):
        aad = fmt.dek_aad(VAULT_ID, dek_id, MASTER_KEY_ID)
        out["deks"].append({"id": dek_id, "key_hex": dek.hex(), "nonce_hex": nonce(i).hex(), "aad_hex": aad.hex(),
                            "wrapped_hex": seal(MASTER_KEY, dek, aad, nonce=nonce(i)).hex()})
    keys = dict(DEKS)
    out["secrets"] = []
    for i, (name, version, dek_id, metadata, value) in enumerate(SECRETS, start=10):
        metadata_json = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
        aad = fmt.secret_aad(VAULT_ID, name, version, dek_id, metadata_json)
        out["secrets"].append({"name": name, "version": version, "dek_id": dek_id, "metadata": metadata, "metadata_json": metadata_json,
                               "value_hex": value.hex(), "nonce_hex": nonce(i).hex(), "aad_hex": aad.hex(),
                               "sealed_hex": seal(keys[dek_id], value, aad, nonce=nonce(i)).hex()})
    params = ScryptParams(salt_hex="000102030405060708090a0b0c0d0e0f", n=2**10, r=8, p=1)
    passphrase = "correct horse battery staple"
    head_key = bytes(range(0xC0, 0xE0))
    head_aad = fmt.head_key_aad(VAULT_ID, MASTER_KEY_ID)
    out["head"] = {"key_hex": head_key.hex(), "nonce_hex": nonce(9).hex(), "aad_hex": head_aad.hex(),
                   "wrapped_hex": seal(MASTER_KEY, head_key, head_aad, nonce=nonce(9)).hex(), "macs": []}
    import hashlib, hmac
    for name, version, sensitive, deleted_at in [("db/password", 2, False, None), ("krb/host.keytab", 1, True, None), ("a/b", 3, False, "2026-11-28T17:00:00.000000Z")]:
        data = fmt.head_mac_input(VAULT_ID, name, version, sensitive, deleted_at)
        out["head"]["macs"].append({"name": name, "current_version": version, "sensitive": sensitive, "deleted_at": deleted_at,
                                    "input_hex": data.hex(), "mac_hex": hmac.new(head_key, data, hashlib.sha256).hexdigest()})
    out["scrypt"] = {"passphrase": passphrase, **params.to_dict(), "key_hex": derive_key(passphrase.encode(), params).hex()}
    schema = sqlite3.connect(":memory:")
    schema.executescript(fmt.SCHEMA_V1)
    out["tables"] = {t: [c[1] for c in schema.execute(f"PRAGMA table_info({t})")] for t in ("meta", "deks", "secrets", "versions")}
    target = Path(__file__).with_name("vault_v1.json")
    target.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

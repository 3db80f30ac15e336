#!/usr/bin/env python3
"""Decrypt a zerotrust-admin vault (format 1) with only sqlite3 and cryptography.

Usage: decrypt_vault.py VAULT_DB KEY_FILE   (the master key: base64 of 32 bytes, e.g. master.key)
       ZEROTRUST_PASSPHRASE=... decrypt_vault.py VAULT_DB -   (a passphrase-protected vault)
Prints one JSON object per secret version. See docs/vault-format.md.
"""
import base64, json, os, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt


def aad(*parts):  # the fields, UTF-8 encoded, joined by one NUL byte
    return b"\x00".join(str(p).encode("utf-8") for p in parts)


def unseal(key, blob, ad):  # blob = nonce(12) || ciphertext || tag(16)
    return AESGCM(key).decrypt(blob[:12], blob[12:], ad)


db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
meta = dict(db.execute("SELECT key, value FROM meta"))
assert meta["format"] == "1", "not a format-1 vault"
vid, mkid = meta["vault_id"], meta["master_key_id"]
if meta["master_source"] == "passphrase":
    kdf = json.loads(meta["master_params"])["kdf"]
    scrypt = Scrypt(salt=bytes.fromhex(kdf["salt_hex"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"])
    master = scrypt.derive(os.environ["ZEROTRUST_PASSPHRASE"].encode("utf-8"))
else:  # keyfile / env: the same 32-byte key, stored as base64 text
    master = base64.b64decode(open(sys.argv[2], "rb").read().strip())
check = unseal(master, bytes.fromhex(meta["kcv"]), aad("zt-kcv-v1", vid, mkid))
assert check == b"zerotrust key check v1", "wrong master key"
deks = {i: unseal(master, w, aad("zt-dek-v1", vid, i, m)) for i, w, m in db.execute("SELECT id, wrapped, master_key_id FROM deks")}
rows = db.execute("SELECT v.name, v.version, v.dek_id, v.metadata, v.sealed, s.current_version, s.deleted_at "
                  "FROM versions v JOIN secrets s ON s.name = v.name ORDER BY v.name, v.version")
for name, version, dek_id, metadata, sealed, current, deleted_at in rows:
    value = unseal(deks[dek_id], sealed, aad("zt-secret-v1", vid, name, version, dek_id, metadata))
    print(json.dumps({"name": name, "version": version, "current": version == current, "deleted": deleted_at is not None,
                      "metadata": json.loads(metadata), "value_base64": base64.b64encode(value).decode("ascii")}))

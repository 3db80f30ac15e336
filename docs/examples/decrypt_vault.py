#!/usr/bin/env python3
"""Verify and decrypt a zerotrust-admin vault (format 2) with only sqlite3 and cryptography.

Usage: decrypt_vault.py VAULT_DB KEY_FILE   (the master key: base64 of 32 bytes, e.g. master.key)
       ZEROTRUST_PASSPHRASE=... decrypt_vault.py VAULT_DB -   (a passphrase-protected vault)
Checks the key, the meta MAC, every head, data-key and version MAC, the 256 bucket digests and the commitment,
then prints one JSON object per secret version. See docs/vault-format.md.
"""
import base64, hashlib, hmac, json, os, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt


def aad(*parts):  # the fields, UTF-8 encoded, joined by one NUL byte
    return b"\x00".join(str(p).encode("utf-8") for p in parts)


fields = lambda *parts: b"".join(b"\x00" if p is None else b"\x01" + len(str(p).encode()).to_bytes(4, "big") + str(p).encode() for p in parts)  # noqa: E731
# a format-2 MAC input: NULL = 0x00; text = 0x01, its UTF-8 length (4 bytes, big-endian), its UTF-8 bytes


unseal = lambda key, blob, ad: AESGCM(key).decrypt(blob[:12], blob[12:], ad)  # noqa: E731  (blob = nonce(12) || ciphertext || tag(16))


def check(mac, *parts):  # an HMAC-SHA256 under the head key, stored as hex
    assert hmac.compare_digest(hmac.new(head_key, fields(*parts), hashlib.sha256).hexdigest(), mac or ""), f"tampered: {parts[:3]}"


db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
meta = dict(db.execute("SELECT key, value FROM meta"))
assert meta["format"] == "2", "not a format-2 vault (zerotrust-admin upgrades format 1 on its first open)"
vid, mkid = meta["vault_id"], meta["master_key_id"]
if meta["master_source"] == "passphrase":
    kdf = json.loads(meta["master_params"])["kdf"]
    scrypt = Scrypt(salt=bytes.fromhex(kdf["salt_hex"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"])
    master = scrypt.derive(os.environ["ZEROTRUST_PASSPHRASE"].encode("utf-8"))
else:  # keyfile / env: the same 32-byte key, stored as base64 text
    master = base64.b64decode(open(sys.argv[2], "rb").read().strip())
assert unseal(master, bytes.fromhex(meta["kcv"]), aad("zt-kcv-v1", vid, mkid)) == b"zerotrust key check v1", "wrong master key"
head_key = unseal(master, bytes.fromhex(meta["head_key"]), aad("zt-head-key-v1", vid, mkid))
check(meta["meta_mac"], "zt-meta-v2", vid, *[x for k in sorted(meta) if k not in ("meta_mac", "commit", "generation") for x in (k, meta[k])])
heads, buckets = {r[0]: r for r in db.execute("SELECT name, incarnation, current_version, sensitive, created, updated, deleted_at, deleted_by, head_mac, bucket FROM secrets ORDER BY name")}, [b""] * 256
for name, inc, cur, sens, created, updated, deleted_at, deleted_by, mac, b in heads.values():
    check(mac, "zt-head-v2", vid, name, inc, cur, sens, created, updated, deleted_at, deleted_by)
    assert b == hashlib.sha256(aad("zt-bucket-v1", vid, name)).digest()[0], f"tampered: {name} outside its bucket"
    buckets[b] += fields(name, mac)  # a bucket's digest: SHA-256 over the framed name, head_mac of its rows, in name order
deks, macs = {}, [d for _, d in db.execute("SELECT bucket, digest FROM buckets ORDER BY bucket")]
assert macs == [hashlib.sha256(t).hexdigest() for t in buckets], "tampered: a bucket does not match its rows"
for i, w, m, created, state, mac in db.execute("SELECT id, wrapped, master_key_id, created, state, mac FROM deks ORDER BY id"):
    check(mac, "zt-dek-record-v2", vid, i, m, created, state)
    deks[i], macs = unseal(master, w, aad("zt-dek-v1", vid, i, m)), macs + [mac]
sessions = [r[0] for r in db.execute("SELECT mac FROM session_keys ORDER BY id")] if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'session_keys'").fetchone() else []
digest = hashlib.sha256("".join(macs + sessions + [meta["meta_mac"]]).encode()).hexdigest()
check(meta["commit"], "zt-commit-v2", vid, meta["generation"], len(deks), len(sessions), digest)
for name, version, dek_id, metadata, sealed, created, created_by, size, mac in db.execute("SELECT name, version, dek_id, metadata, sealed, created, created_by, size, mac FROM versions ORDER BY name, version"):
    check(mac, "zt-version-v2", vid, name, heads[name][1], version, dek_id, created, created_by, size, metadata, hashlib.sha256(sealed).hexdigest())
    value = unseal(deks[dek_id], sealed, aad("zt-secret-v1", vid, name, version, dek_id, metadata))
    print(json.dumps({"name": name, "version": version, "current": version == heads[name][2], "deleted": heads[name][6] is not None,
                      "metadata": json.loads(metadata), "value_base64": base64.b64encode(value).decode("ascii")}))

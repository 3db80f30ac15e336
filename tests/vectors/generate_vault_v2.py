"""Generate tests/vectors/vault_v2.json ONCE; the committed JSON is the pin.

Run from the repository root:  .venv/bin/python tests/vectors/generate_vault_v2.py
The format-2 MACs (docs/vault-format.md, "Format 2: MACs and the commitment"),
all HMAC-SHA256 under the head key of vault_v1.json. Do not regenerate to make
tests/test_vault_format.py pass: a mismatch means the format changed.
(Regenerated once for the bucketed commitment, zt-commit-v2; and once for the
framed MAC inputs, NULL distinct from empty and no field able to pose as two: F10/F11.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from zerotrust_admin.vault import format as fmt

V1 = json.loads(Path(__file__).with_name("vault_v1.json").read_text())
VAULT_ID = V1["vault_id"]
MASTER_KEY_ID = V1["master_key_id"]
HEAD_KEY = bytes.fromhex(V1["head"]["key_hex"])
INCARNATION = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
T1, T2 = "2026-11-28T16:36:46.778783Z", "2026-11-29T08:00:00.000001Z"


def mac(data: bytes) -> str:
    return hmac.new(HEAD_KEY, data, hashlib.sha256).hexdigest()


def main() -> None:
    out: dict = {"description": "Known-answer vectors for vault format 2 (docs/vault-format.md); head key, vault id and master key id from vault_v1.json.",
                 "format": fmt.FORMAT_VERSION, "vault_id": VAULT_ID, "master_key_id": MASTER_KEY_ID, "head_key_hex": HEAD_KEY.hex()}
    heads = []
    for name, version, sensitive, deleted_at, deleted_by in [("db/password", 2, False, None, None), ("krb/host.keytab", 1, True, T2, "alice@EXAMPLE.COM")]:
        data = fmt.head_mac_input_v2(VAULT_ID, name, INCARNATION, version, sensitive, T1, T2, deleted_at, deleted_by)
        heads.append({"name": name, "incarnation": INCARNATION, "current_version": version, "sensitive": sensitive, "created": T1, "updated": T2,
                      "deleted_at": deleted_at, "deleted_by": deleted_by, "input_hex": data.hex(), "mac_hex": mac(data)})
    out["heads"] = heads
    sealed = bytes.fromhex(V1["secrets"][1]["sealed_hex"])
    s = V1["secrets"][1]
    data = fmt.version_mac_input(VAULT_ID, s["name"], INCARNATION, s["version"], s["dek_id"], T1, "alice@EXAMPLE.COM", len(s["value_hex"]) // 2,
                                 s["metadata_json"], hashlib.sha256(sealed).hexdigest())
    out["version"] = {"name": s["name"], "incarnation": INCARNATION, "version": s["version"], "dek_id": s["dek_id"], "created": T1,
                      "created_by": "alice@EXAMPLE.COM", "size": len(s["value_hex"]) // 2, "metadata_json": s["metadata_json"],
                      "sealed_hex": sealed.hex(), "sealed_sha256_hex": hashlib.sha256(sealed).hexdigest(), "input_hex": data.hex(), "mac_hex": mac(data)}
    deks = []
    for dek, state in zip(V1["deks"], ("retired", "active")):
        data = fmt.dek_record_mac_input(VAULT_ID, dek["id"], MASTER_KEY_ID, T1, state)
        deks.append({"id": dek["id"], "master_key_id": MASTER_KEY_ID, "created": T1, "state": state, "input_hex": data.hex(), "mac_hex": mac(data)})
    out["deks"] = deks
    data = fmt.session_key_record_mac_input(VAULT_ID, "5e5e5e5e5e5e5e5e", MASTER_KEY_ID, T2, "current")
    out["session_key"] = {"id": "5e5e5e5e5e5e5e5e", "master_key_id": MASTER_KEY_ID, "created": T2, "state": "current", "input_hex": data.hex(), "mac_hex": mac(data)}
    meta = {"format": "2", "vault_id": VAULT_ID, "created": T1, "master_source": "keyfile", "master_params": "{}", "master_key_id": MASTER_KEY_ID,
            "master_created": T1, "kcv": V1["kcv"]["sealed_hex"], "head_key": V1["head"]["wrapped_hex"], "dek_rotated": T2}
    data = fmt.meta_mac_input(VAULT_ID, meta)
    out["meta"] = {"records": meta, "input_hex": data.hex(), "mac_hex": mac(data)}
    # Buckets: bucket(name) = first byte of SHA-256("zt-bucket-v1" 0x00 vault_id 0x00 name);
    # a bucket's digest = SHA-256 over the framed fields name, head_mac of its rows in name order.
    members: dict[int, list] = {}
    for h in sorted(heads, key=lambda h: h["name"]):
        h["bucket_input_hex"] = fmt._join("zt-bucket-v1", VAULT_ID, h["name"]).hex()
        h["bucket"] = fmt.bucket_of(VAULT_ID, h["name"])
        members.setdefault(h["bucket"], []).append((h["name"], h["mac_hex"]))
    digests = [fmt.bucket_digest(members.get(b, ())) for b in range(fmt.BUCKETS)]
    out["buckets"] = {"empty_digest_hex": fmt.EMPTY_BUCKET_DIGEST,
                      "non_empty": [{"bucket": b, "rows": [list(r) for r in rows],
                                     "input_hex": b"".join(fmt._fields(n, m) for n, m in rows).hex(), "digest_hex": digests[b]}
                                    for b, rows in sorted(members.items())]}
    macs = digests + [d["mac_hex"] for d in sorted(deks, key=lambda d: d["id"])]
    macs += [out["session_key"]["mac_hex"], out["meta"]["mac_hex"]]
    digest = hashlib.sha256("".join(macs).encode("ascii")).hexdigest()
    data = fmt.commit_input(VAULT_ID, 7, len(deks), 1, digest)
    out["commit"] = {"generation": 7, "deks": len(deks), "session_keys": 1, "digest_hex": digest, "input_hex": data.hex(), "mac_hex": mac(data)}
    target = Path(__file__).with_name("vault_v2.json")
    target.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

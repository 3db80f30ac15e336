"""Regenerate tests/vectors/backup-v2-*.ztb and print the known-answer section
of docs/backup.md (only if the backup format changes; the files are pinned by
tests/test_backup.py, which also recomputes them from the doc's numbers).

    .venv/bin/python tests/vectors/generate_backup_v2.py > /tmp/kat.md

Every random draw of the writer is fixed (``write_backup(rand=...)``): the
X25519 ephemeral private key or the scrypt salt, the CEK, the wrap nonce, the
chunk nonce; the Ed25519 signature is deterministic.
"""

import base64
import hashlib
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zerotrust_admin.crypto import derive_key, hkdf_sha256, x25519_public, x25519_shared  # noqa: E402
from zerotrust_admin.crypto.ed25519 import ed25519_public, ed25519_sign  # noqa: E402
from zerotrust_admin.crypto.kdf import ScryptParams  # noqa: E402
from zerotrust_admin.secret import Secret  # noqa: E402
from zerotrust_admin.vault import backup as bk  # noqa: E402

HERE = Path(__file__).resolve().parent
CREATED = "2026-01-01T00:00:00.000000Z"
VAULT_ID = "kat-vault"
RECIPIENT_PRIVATE = bytes(range(0x01, 0x21))
EPHEMERAL_PRIVATE = bytes(range(0x21, 0x41))
SALT = bytes(range(0x00, 0x10))
PASSPHRASE = "known-answer passphrase"
SCRYPT_N = 2**10
CEK = bytes(range(0x41, 0x61))
WRAP_NONCE = bytes(range(0x61, 0x6D))
CHUNK0_NONCE = bytes(range(0x71, 0x7D))
SIGNING_SEED = bytes(range(0x81, 0xA1))
RECORDS = [
    {"type": "secret", "name": "db/password", "current_version": 1, "sensitive": False, "created": CREATED, "updated": CREATED,
     "deleted_at": None, "deleted_by": None},
    {"type": "version", "name": "db/password", "version": 1, "created": CREATED, "created_by": "alice@EXAMPLE.COM",
     "metadata": "{}", "value": base64.b64encode(b"s3cret").decode()},
]


class Signer:
    public_raw = ed25519_public(SIGNING_SEED)
    key_id = hashlib.sha256(public_raw).digest()[:8].hex()

    def sign(self, message: bytes) -> bytes:
        return ed25519_sign(SIGNING_SEED, message)


def draws(first: bytes):
    queue = [first, CEK, WRAP_NONCE, CHUNK0_NONCE]

    def rand(n: int) -> bytes:
        value = queue.pop(0)
        assert len(value) == n, (len(value), n)
        return value

    return rand


def build(kind: str) -> bytes:
    import io

    out = io.BytesIO()
    if kind == "x25519":
        kek, first = bk.RecipientKek(x25519_public(RECIPIENT_PRIVATE)), EPHEMERAL_PRIVATE
    else:
        kek, first = bk.PassphraseKek(Secret(PASSPHRASE), scrypt_n=SCRYPT_N), SALT
    bk.write_backup(iter(RECORDS), out, kek, signer=Signer(), source_vault_id=VAULT_ID, created=CREATED, rand=draws(first))
    return out.getvalue()


def wrap(hexstr: str, width: int = 64, indent: str = "    ") -> str:
    return "\n".join(indent + hexstr[i:i + width] for i in range(0, len(hexstr), width))


def parts(data: bytes) -> dict:
    header_len = struct.unpack(">I", data[10:14])[0]
    at = 14 + header_len
    wrapped = data[at + 4:at + 4 + 60]
    checksum = data[at + 64:at + 96]
    chunk = data[at + 96:-64]
    return {"preamble": data[:14], "header": data[14:at], "wrapped": wrapped, "checksum": checksum, "chunk0": chunk,
            "transcript": hashlib.sha256(data[:-64]).digest(), "signature": data[-64:]}


def section(kind: str, data: bytes) -> str:
    p = parts(data)
    lines = [f"kat = {kind}"]
    if kind == "x25519":
        recipient = x25519_public(RECIPIENT_PRIVATE)
        e_pub = x25519_public(EPHEMERAL_PRIVATE)
        shared = x25519_shared(EPHEMERAL_PRIVATE, recipient)
        lines += [f"recipient_private = {RECIPIENT_PRIVATE.hex()}", f"recipient_public = {recipient.hex()}",
                  f"recipient_string = {bk.format_public(recipient)}", f"recipient_fingerprint = {bk.fingerprint(recipient)}",
                  f"ephemeral_private = {EPHEMERAL_PRIVATE.hex()}", f"ephemeral_public = {e_pub.hex()}",
                  f"shared = {shared.hex()}", f"kek = {hkdf_sha256(shared, salt=e_pub + recipient, info=bk.HKDF_INFO).hex()}"]
    else:
        lines += [f"passphrase = {PASSPHRASE}", f"salt = {SALT.hex()}", f"scrypt_n = {SCRYPT_N}",
                  f"kek = {derive_key(PASSPHRASE.encode(), ScryptParams(salt_hex=SALT.hex(), n=SCRYPT_N)).hex()}"]
    lines += [f"cek = {CEK.hex()}", f"wrap_nonce = {WRAP_NONCE.hex()}", f"chunk0_nonce = {CHUNK0_NONCE.hex()}",
              f"signing_seed = {SIGNING_SEED.hex()}", f"signing_public = {Signer.public_raw.hex()}", f"signer_key_id = {Signer.key_id}",
              f"header = {p['header'].decode()}", f"preamble = {p['preamble'].hex()}"]
    for name in ("wrapped", "checksum", "chunk0", "transcript", "signature"):
        lines.append(f"{name} =\n{wrap(p[name].hex())}")
    return "```text\n" + "\n".join(lines) + "\n```\n"


if __name__ == "__main__":
    payload = b"".join(bk.canonical(r) + b"\n" for r in (
        {"format": 2, "source_vault_id": VAULT_ID, "type": "backup"}, *[bk._project(r) for r in RECORDS],
        {"secrets": 1, "type": "end", "versions": 1}))
    print("Payload (both vectors), the plaintext of chunk 0:\n\n```text\n" + payload.decode() + "```\n")
    for kind in ("x25519", "passphrase"):
        data = build(kind)
        (HERE / f"backup-v2-{kind}.ztb").write_bytes(data)
        print(section(kind, data))

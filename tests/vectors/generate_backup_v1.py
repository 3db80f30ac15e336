"""Regenerate tests/vectors/backup-v1-*.ztb (only if the backup format version changes).

    .venv/bin/python tests/vectors/generate_backup_v1.py

The passphrase vector uses "known-answer passphrase" (scrypt N=2^10); the X25519
vector is for the private key bytes 1..32. Random nonces/keys differ on each run;
the tests check what the files decrypt to, not their bytes.
"""

import base64
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zerotrust_admin.crypto import x25519_public  # noqa: E402
from zerotrust_admin.secret import Secret  # noqa: E402
from zerotrust_admin.vault import backup as bk  # noqa: E402

HERE = Path(__file__).resolve().parent
RECORDS = [
    {"type": "secret", "name": "db/password", "current_version": 2, "sensitive": False, "created": "2026-01-01T00:00:00.000000Z",
     "updated": "2026-01-02T00:00:00.000000Z", "deleted_at": None, "deleted_by": None},
    {"type": "version", "name": "db/password", "version": 1, "created": "2026-01-01T00:00:00.000000Z", "created_by": "alice@EXAMPLE.COM",
     "metadata": "{}", "value": base64.b64encode(b"first").decode()},
    {"type": "version", "name": "db/password", "version": 2, "created": "2026-01-02T00:00:00.000000Z", "created_by": "alice@EXAMPLE.COM",
     "metadata": '{"owner":"dba"}', "value": base64.b64encode(b"second\x00\xff").decode()},
]

if __name__ == "__main__":
    with open(HERE / "backup-v1-passphrase.ztb", "wb") as fh:
        bk.write_backup(iter(RECORDS), fh, bk.PassphraseKek(Secret("known-answer passphrase"), scrypt_n=2**10), source_vault_id="kat-vault")
    with open(HERE / "backup-v1-x25519.ztb", "wb") as fh:
        bk.write_backup(iter(RECORDS), fh, bk.RecipientKek(x25519_public(bytes(range(1, 33)))), source_vault_id="kat-vault")

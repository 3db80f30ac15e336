"""tests/vectors/backup-v1-*.ztb are frozen: format 1 (unsigned) is no longer
written by zerotrust-admin, only read behind ``vault restore --allow-unsigned``
(docs/backup.md, "Format 1"). They were made by the format-1 writer with:

* ``backup-v1-passphrase.ztb``: passphrase "known-answer passphrase", scrypt N=2^10;
* ``backup-v1-x25519.ztb``: recipient = the X25519 public key of the private key
  bytes 1..32 (``zt-x25519:B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHw=``);

source vault id "kat-vault", and the records below (random nonces and keys, so
the tests check what the files decrypt to, not their bytes). Format 2's vectors
are made by generate_backup_v2.py.
"""

import base64
import sys

RECORDS = [
    {"type": "secret", "name": "db/password", "current_version": 2, "sensitive": False, "created": "2026-01-01T00:00:00.000000Z",
     "updated": "2026-01-02T00:00:00.000000Z", "deleted_at": None, "deleted_by": None},
    {"type": "version", "name": "db/password", "version": 1, "created": "2026-01-01T00:00:00.000000Z", "created_by": "alice@EXAMPLE.COM",
     "metadata": "{}", "value": base64.b64encode(b"first").decode()},
    {"type": "version", "name": "db/password", "version": 2, "created": "2026-01-02T00:00:00.000000Z", "created_by": "alice@EXAMPLE.COM",
     "metadata": '{"owner":"dba"}', "value": base64.b64encode(b"second\x00\xff").decode()},
]

if __name__ == "__main__":
    sys.exit("format 1 is frozen: the committed backup-v1-*.ztb files are the vectors (see this file's docstring)")

"""Opening the SQLite file: the file checks and the connection settings."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import contextmanager
from pathlib import Path

from zerotrust_admin.errors import IntegrityError, InsecureFileError, NotFoundError, UsageError
from zerotrust_admin.vault import format as fmt

BUSY_TIMEOUT_MS = 30_000


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Freed pages are zeroed, so destroyed ciphertext does not linger in the file.
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def check_vault_file(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFoundError(f"no vault at {path}", hint="create one with: zerotrust-admin init") from None
    if stat.S_ISLNK(st.st_mode):
        raise InsecureFileError(f"vault file {path} is a symbolic link; refusing to follow it", hint="replace the link with the real vault file")
    if not stat.S_ISREG(st.st_mode):
        raise InsecureFileError(f"vault file {path} is not a regular file")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise InsecureFileError(f"vault file {path} has mode {stat.S_IMODE(st.st_mode):04o}, which lets others write it", hint=f"chmod 600 {path}")
    with open(path, "rb") as fh:
        header = fh.read(100)
    head = header[: len(fmt.SQLITE_MAGIC)]
    if head != fmt.SQLITE_MAGIC:
        if len(head) < len(fmt.SQLITE_MAGIC):
            raise IntegrityError(f"vault file {path} is truncated ({st.st_size} bytes)", hint="restore the vault from a backup")
        raise UsageError(f"{path} is not a zerotrust-admin vault (not an SQLite file)", hint="check ZEROTRUST_HOME / the vault path")
    if len(header) < 100:
        raise IntegrityError(f"vault file {path} is truncated ({st.st_size} bytes)", hint="restore the vault from a backup")
    # SQLite only reads the pages it needs, so a cut-off tail can go unnoticed
    # until the day those pages are needed. The header records the size.
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96] and pages > 0
    wal = Path(f"{path}-wal")
    wal_empty = not wal.exists() or wal.stat().st_size == 0
    if header_valid and wal_empty and st.st_size < page_size * pages:
        raise IntegrityError(f"vault file {path} is truncated ({st.st_size} of {page_size * pages} bytes)", hint="restore the vault from a backup")


@contextmanager
def _db_errors(path: Path):
    try:
        yield
    except UnicodeDecodeError:
        # A corrupted page can turn a TEXT column into invalid UTF-8.
        raise IntegrityError(f"the vault file {path} is damaged (undecodable text)", hint="restore the vault from a backup") from None
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            from zerotrust_admin.errors import BusyError

            raise BusyError(f"the vault {path} stayed locked for {BUSY_TIMEOUT_MS // 1000} s", hint="another process holds a long write; retry") from None
        raise IntegrityError(f"the vault file {path} is damaged ({text})", hint="restore the vault from a backup") from None


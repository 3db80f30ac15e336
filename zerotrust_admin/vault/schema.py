"""Opening the SQLite file: the file checks, the connection settings, and the
schema check (threat model V2: a planted trigger, view, table or index, or an
altered CREATE, is refused before anything is read through it)."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from zerotrust_admin import fsutil
from zerotrust_admin.errors import IntegrityError, InsecureFileError, NotFoundError, UsageError
from zerotrust_admin.vault import format as fmt

BUSY_TIMEOUT_MS = 30_000


def check_vault_file(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFoundError(f"no vault at {path}", hint="create one with: zerotrust-admin init") from None
    if stat.S_ISLNK(st.st_mode):
        raise InsecureFileError(f"vault file {path} is a symbolic link; refusing to follow it", hint="replace the link with the real vault file")
    if not stat.S_ISREG(st.st_mode):
        raise InsecureFileError(f"vault file {path} is not a regular file")
    fsutil.check_owner(st, path, what="vault file")  # V6: another user's file in its place is theirs, not ours
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        what = "write" if mode & 0o022 else "read"
        raise InsecureFileError(f"vault file {path} has mode {mode:04o}, which lets others {what} it", hint=f"chmod 600 {path}")
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



@lru_cache(maxsize=None)
def expected_schema(format_version: int) -> tuple[dict, dict]:
    """(required, optional) ``sqlite_master`` rows of a vault of that format,
    as {name: (type, tbl_name, sql)}, exactly as SQLite stores them."""
    schema, session = (fmt.SCHEMA, fmt.SESSION_KEYS_SCHEMA) if format_version == fmt.FORMAT_VERSION else (fmt.SCHEMA_V1, fmt.SESSION_KEYS_SCHEMA_V1)
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(schema)
        required = {r[0]: tuple(r[1:]) for r in mem.execute("SELECT name, type, tbl_name, sql FROM sqlite_master")}
        mem.execute(session)
        optional = {r[0]: tuple(r[1:]) for r in mem.execute("SELECT name, type, tbl_name, sql FROM sqlite_master") if r[0] not in required}
    finally:
        mem.close()
    return required, optional


def read_schema(conn: sqlite3.Connection) -> dict:
    return {r[1]: (r[0], r[2], r[3]) for r in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")}


def schema_problem(actual: dict, format_version: int) -> str | None:
    """None when ``actual`` is exactly the documented schema of that format
    (the session_keys table with its index all there or all absent), else
    what is wrong, naming the first offending object."""
    required, optional = expected_schema(format_version)
    for name, (kind, table, sql) in sorted(actual.items()):
        want = required.get(name) or optional.get(name)
        if want is None:
            return f"a {kind} {name!r} (on {table!r}) that is not part of the vault format"
        if (kind, table, sql) != want:
            return f"an altered {want[0]} {name!r} (its definition is not the documented one)"
    for name, (kind, _table, _sql) in required.items():
        if name not in actual:
            return f"no {kind} {name!r}"
    present = [n for n in optional if n in actual]
    if present and len(present) != len(optional):
        missing = next(n for n in optional if n not in actual)
        return f"no {optional[missing][0]} {missing!r}"
    return None


def meta_table_ok(actual: dict) -> bool:
    want = expected_schema(fmt.FORMAT_VERSION)[0]["meta"]
    return actual.get("meta") == want and expected_schema(fmt.FORMAT_V1)[0]["meta"] == want

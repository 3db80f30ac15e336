"""Private files and directories: 0600 / 0700 whatever the umask, no symlinks.

Everything the tool writes goes through these helpers, so the permission
rules live in one place.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from zerotrust_admin.errors import InsecureFileError, NotFoundError, ZeroTrustError

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as 0700; tighten an existing directory we own."""
    path = Path(path)
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise ZeroTrustError(f"{path} exists and is not a directory") from None
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise ZeroTrustError(f"{path} exists and is not a directory")
    if stat.S_IMODE(st.st_mode) & 0o077:
        if st.st_uid == os.geteuid():
            os.chmod(path, DIR_MODE)
        else:
            raise InsecureFileError(
                f"directory {path} is accessible to others and not owned by you",
                hint=f"chmod 700 {path}",
            )
    return path


def check_private_file(path: Path, *, what: str = "file", allow_group_read: bool = False) -> os.stat_result:
    """Refuse a symlink, a non-regular file, or a file others can read or write.

    Key and secret files must be 0600 (no group/other bits at all). Callers may
    relax that to "nobody else can write" for files that hold no secret.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFoundError(f"{what} {path} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise InsecureFileError(
            f"{what} {path} is a symbolic link; refusing to follow it",
            hint="replace the link with the real file (mode 0600)",
        )
    if not stat.S_ISREG(st.st_mode):
        raise InsecureFileError(f"{what} {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    forbidden = 0o022 if allow_group_read else 0o077
    if mode & forbidden:
        raise InsecureFileError(
            f"{what} {path} has mode {mode:04o}, which lets others "
            + ("write it" if allow_group_read else "read or write it"),
            hint=f"chmod 600 {path}",
        )
    return st


def read_private_file(path: Path, *, what: str = "file", max_bytes: int = 1 << 20) -> bytes:
    """Read a file that must be private, without following a symlink."""
    check_private_file(path, what=what)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise ZeroTrustError(f"{what} {path} is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600.

    The data goes to a new temporary file in the same directory (O_EXCL, 0600),
    is fsynced, then renamed over the target, so a crash leaves either the old
    file or the new one, never half of it. A symlink at ``path`` is replaced,
    never followed.
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise ZeroTrustError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    if not overwrite:
        # link() fails if the target appeared meanwhile: no silent overwrite.
        try:
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
    else:
        os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path) -> int:
    """Open (creating if needed) a 0600 file for appending, refusing symlinks."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) & 0o077:
        if st.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
        else:
            os.close(fd)
            raise InsecureFileError(f"{path} is accessible to others", hint=f"chmod 600 {path}")
    return fd


def connect_private_sqlite(path: Path, *, what: str, schema: str, timeout: float = 10.0):
    """A SQLite connection (autocommit) to a small state database of ours: the
    directory made 0700, the file created 0600 without following a planted
    symlink, its permissions checked, ``schema`` applied (idempotent DDL)."""
    import sqlite3

    ensure_private_dir(path.parent)
    if not os.path.lexists(path):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE))
        except FileExistsError:
            pass  # another process created it first
    check_private_file(path, what=what)
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    conn.executescript(schema)
    return conn

"""Private files and directories: 0600 / 0700 whatever the umask, no symlinks.

Everything the tool writes goes through these helpers, so the permission
rules live in one place. The tool changes the mode only of what it has just
created itself (threat model F3): an existing directory or file is checked
and, if others could reach it, refused with a chmod hint, never "fixed"; a
device, fifo or socket is never opened for writing nor chmodded. An existing
key, log, anchor, checkpoint or state file, and a directory the tool writes
into, must be owned by the user the tool runs as (or by root, who can replace
anything anyway): a file another user planted ahead of the tool, in a shared
directory such as /tmp, is refused naming its owner, never adopted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from zerotrust_admin.errors import InsecureFileError, NotFoundError, UsageError, ZeroTrustError

FILE_MODE = 0o600
DIR_MODE = 0o700


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def trusted_owner(uid: int) -> bool:
    """The effective user, or root (who can replace any file anyway)."""
    return uid in (os.geteuid(), 0)


def check_owner(st: os.stat_result, path: Path, *, what: str = "file") -> None:
    """Refuse (exit 2) a file or directory the tool did not create and that
    another user owns: its content (a key, a log head, a counter) is theirs."""
    if not trusted_owner(st.st_uid):
        raise InsecureFileError(
            f"{what} {path} is owned by {_owner_name(st.st_uid)}, not by {_owner_name(os.geteuid())} who runs the tool; refusing to use it",
            hint=f"if you did not put it there, move it away and keep it as evidence; the tool creates its own files (ls -ln {path})",
        )


def _mkdir_private(path: Path) -> bool:
    """mkdir one directory as 0700; True when this call created it (and set
    its mode exactly, whatever the umask), False when it already existed."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, DIR_MODE)  # ours: created just now
    finally:
        os.close(fd)
    return True


def ensure_private_dir(path: Path) -> Path:
    """Make sure ``path`` is a directory the tool may keep its files in.

    Missing directories (and missing parents) are created 0700. An existing
    directory is left exactly as it is (a shared parent such as ``/var/log``
    is fine: the files created in it are 0600), unless anybody may replace
    files in it (world-writable without the sticky bit): then it is refused.
    ``$ZEROTRUST_HOME`` itself is held to a stricter rule (``check_home_dir``).
    """
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            _mkdir_private(directory)
        except NotADirectoryError:
            raise UsageError(f"cannot create directory {directory}: a parent of it is not a directory") from None
        except PermissionError:
            raise UsageError(f"cannot create directory {directory}: permission denied") from None
    try:
        st = path.stat()
    except FileNotFoundError:  # a dangling symlink
        raise UsageError(f"{path} is a symbolic link to nothing", hint="remove the link or point it at a directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} exists and is not a directory", hint="point the setting at a directory, or move the file away")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o002 and not mode & stat.S_ISVTX and path not in missing:
        raise InsecureFileError(
            f"directory {path} has mode {mode:04o}: anybody may replace the files in it",
            hint=f"chmod o-w {path} (the tool does not change modes of what it did not create)",
        )
    if path not in missing:
        check_owner(st, path, what="directory")  # its owner could replace the files the tool creates in it
    return path


def check_home_dir(path: Path, *, what: str = "ZEROTRUST_HOME") -> None:
    """An existing ``$ZEROTRUST_HOME`` must be a directory that nobody else can
    reach (no group/other bits). It is never chmodded: a home that is 0755 or
    0777 was made so by somebody, and the operator decides what to do."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        if os.path.lexists(path):
            raise UsageError(f"{what} {path} is a symbolic link to nothing", hint="remove the link or point it at a directory") from None
        return  # created 0700 on first use
    except NotADirectoryError:
        raise UsageError(f"{what} {path} is not a directory: a parent of it is a file", hint=f"set {what} to a directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} {path} is not a directory", hint=f"set {what} to a directory (it is created 0700 if missing)")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InsecureFileError(
            f"{what} {path} has mode {mode:04o}, which lets others reach the vault and keys; refusing to use it",
            hint=f"chmod 700 {path}",
        )
    if st.st_uid != os.geteuid():  # root too: the owner of the home could replace every file in it
        raise InsecureFileError(f"{what} {path} is owned by {_owner_name(st.st_uid)}, not by {_owner_name(os.geteuid())} who runs the tool",
                                hint=f"use your own {what}")


def check_private_file(path: Path, *, what: str = "file", allow_group_read: bool = False) -> os.stat_result:
    """Refuse a symlink, a non-regular file, a file others can read or write,
    or a file another user owns (``check_owner``).

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
        raise InsecureFileError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    forbidden = 0o022 if allow_group_read else 0o077
    if mode & forbidden:
        raise InsecureFileError(
            f"{what} {path} has mode {mode:04o}, which lets others "
            + ("write it" if allow_group_read else "read or write it"),
            hint=f"chmod 600 {path}",
        )
    check_owner(st, path, what=what)
    return st


def read_private_file(path: Path, *, what: str = "file", max_bytes: int = 1 << 20) -> bytes:
    """Read a file that must be private, without following a symlink."""
    st = check_private_file(path, what=what)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise InsecureFileError(f"{what} {path} changed while it was being opened; refusing it")
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


def _check_output_target(path: Path) -> None:
    """The target of ``write_private_file``: missing, a regular file or a
    symlink (either is replaced, never written through). A directory, a
    device, a fifo or a socket is refused before anything is written."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = path.parent
        if not parent.is_dir():
            raise UsageError(f"cannot write {path}: directory {parent} does not exist") from None
        return
    except NotADirectoryError:
        raise UsageError(f"cannot write {path}: a parent of it is not a directory") from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a directory; give a file name", hint=f"e.g. {path.joinpath('out')}")
    raise UsageError(f"{path} is {_kind(st.st_mode)}; refusing to replace it", hint="write to a regular file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_output_path(path: Path, *, own_dirs=(), own_files=()) -> Path:
    """Refuse (exit 2) a user-chosen output path (``-o``/``--output``/
    ``--output-file`` of every command) that would replace one of the tool's
    own files, before anything is written: anything inside ``own_dirs``
    (``$ZEROTRUST_HOME``), or any of ``own_files`` (the config file, the audit
    log and its key, anchor and checkpoints, the master key file, the signing
    key files). Symlinks and ``..`` are resolved and directories compared by
    identity, so another spelling of the same place (a symlink, a bind mount)
    is refused too. A directory written into that anybody may replace files
    in (world-writable without the sticky bit) is refused as well.
    """
    path = Path(path)
    try:
        parent = Path(os.path.realpath(path.parent))
    except OSError:  # pragma: no cover - realpath does not raise on Linux
        parent = path.parent
    spellings = {parent / path.name, Path(os.path.realpath(path))}
    ancestors = [parent, *parent.parents]

    def refuse(what: str) -> UsageError:
        return UsageError(f"refusing to write {path}: {what}",
                          hint="write the output outside $ZEROTRUST_HOME and away from the config, audit and key files")

    for directory in own_dirs:
        directory = Path(directory)
        real = Path(os.path.realpath(directory))
        if any(s == real or real in s.parents for s in spellings) or any(_same_file(a, directory) for a in ancestors):
            raise refuse(f"it is inside {directory}, which holds the tool's own files")
    for own in own_files:
        own = Path(own)
        real_parent = Path(os.path.realpath(own.parent))
        if (real_parent / own.name in spellings or Path(os.path.realpath(own)) in spellings
                or (own.name == path.name and _same_file(parent, own.parent))):
            raise refuse(f"it is {own}, one of the tool's own files")
    try:
        st = os.stat(parent)
    except OSError:
        return path  # a missing directory: the writer says so
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode) and mode & 0o002 and not mode & stat.S_ISVTX:
        raise InsecureFileError(
            f"directory {path.parent} has mode {mode:04o}: anybody may replace the file written in it",
            hint=f"write somewhere else, or chmod o-w {path.parent} (the tool does not change modes of what it did not create)",
        )
    return path


def write_private_file(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600.

    The data goes to a new temporary file in the same directory, with a random
    name, created O_CREAT|O_EXCL|O_NOFOLLOW as 0600; it is fsynced, then
    renamed over the target, so a crash leaves either the old file or the new
    one, never half of it. On any failure (including the rename, and
    KeyboardInterrupt) the temporary file is unlinked: no plaintext is left
    behind. A symlink at ``path`` is replaced, never followed; a target that
    is a directory, a device or a fifo is refused (exit 2) before anything is
    written.
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise ZeroTrustError(f"{path} already exists; refusing to overwrite it")
    _check_output_target(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _attempt in range(16):
        tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, FILE_MODE)
            break
        except FileExistsError:
            continue
        except PermissionError:
            raise UsageError(f"cannot write {path}: permission denied in {path.parent}") from None
    else:  # pragma: no cover - 16 collisions of 64 random bits
        raise ZeroTrustError(f"cannot create a temporary file next to {path}")
    done = False
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # ours: created just now, whatever the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if not overwrite:
            # link() fails if the target appeared meanwhile: no silent overwrite.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ZeroTrustError(f"{path} already exists; refusing to overwrite it") from None
        else:
            try:
                os.replace(tmp, path)
            except IsADirectoryError:  # a directory appeared meanwhile
                raise UsageError(f"{path} is a directory; give a file name") from None
            done = True
    finally:
        if not done:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path) -> int:
    """Open a file for appending, creating it 0600 if missing; never follows a
    symlink. An existing file is used as it is, never chmodded: it must be a
    regular file that others cannot write (a device such as /dev/null, a fifo,
    or a 0666 file is refused, exit 2). Callers that hold secrets check the
    read bits themselves (``check_private_file``)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.fchmod(fd, FILE_MODE)  # ours: created just now, whatever the umask
        return fd
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # removed meanwhile: try once more, creating it
        return create_private_file(path)
    if stat.S_ISLNK(st.st_mode):
        raise InsecureFileError(f"{path} is a symbolic link; refusing to follow it", hint="replace the link with the real file (mode 0600)")
    if not stat.S_ISREG(st.st_mode):
        # O_NONBLOCK is never reached: a fifo or device is refused before it is opened.
        raise InsecureFileError(f"{path} is {_kind(st.st_mode)}, not a regular file; refusing to write to it",
                                hint="point the setting at a regular file (it is created 0600 if missing)")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    st2 = os.fstat(fd)
    mode = stat.S_IMODE(st2.st_mode)
    if not stat.S_ISREG(st2.st_mode) or (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise InsecureFileError(f"{path} changed while it was being opened; refusing it")
    if mode & 0o022:
        os.close(fd)
        raise InsecureFileError(f"{path} has mode {mode:04o}, which lets others write it", hint=f"chmod 600 {path}")
    try:
        check_owner(st2, path)
    except InsecureFileError:
        os.close(fd)
        raise
    os.set_blocking(fd, True)
    return fd


def connect_private_sqlite(path: Path, *, what: str, schema: str, timeout: float = 10.0):
    """A SQLite connection (autocommit) to a small state database of ours: the
    directory created 0700 if missing, the file created 0600 without following
    a planted symlink, its permissions checked, ``schema`` applied
    (idempotent DDL)."""
    import sqlite3

    ensure_private_dir(path.parent)
    if not os.path.lexists(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            pass  # another process created it first
        else:
            os.fchmod(fd, FILE_MODE)
            os.close(fd)
    check_private_file(path, what=what)
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    conn.executescript(schema)
    return conn

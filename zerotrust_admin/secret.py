"""A byte string that does not print itself and can be wiped.

Memory protection (docs/security-model.md): the process is made non-dumpable
(``protect_process``) before the first ``Secret`` exists; each buffer is locked
in RAM with mlock(2) where the OS allows it, so it is not written to swap; if
RLIMIT_MEMLOCK refuses, the tool still works and warns once. Buffers are
zeroed by ``wipe()``, on garbage collection and at exit. ``SealedSecret`` keeps
a long-lived value encrypted under a per-process key and decrypts on access.
What Python cannot promise: the interpreter may copy bytes it handles (the
``bytes`` that ``reveal()`` returns, strings, SDK buffers), and those copies
are neither locked nor wiped.
"""

from __future__ import annotations

import os
import sys
import threading


_protected = False


def protect_process() -> None:
    """No core dumps of this process (threat model F6): RLIMIT_CORE 0 (soft and
    hard, so nothing later raises it) and, on Linux, PR_SET_DUMPABLE 0 (no core,
    no ptrace attach by the same uid, /proc/<pid>/mem closed). The CLI does it
    at start; the Python API on import of ``zerotrust_kerberos`` and, for a
    program that uses ``zerotrust_admin`` directly, when the first ``Secret``
    is made. Idempotent and cheap after the first call; failures (another OS)
    are ignored: it narrows what leaks, it does not guard anything."""
    global _protected
    if _protected:
        return
    _protected = True
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_DUMPABLE = 4
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


class Secret:
    """Holds secret bytes in a mutable buffer.

    ``repr``/``str`` never show the value. ``wipe()`` overwrites the buffer with
    zeros; Python may still hold transient copies (for example the ``bytes``
    returned by ``reveal()``), so wiping is best effort, not a guarantee.
    """

    __slots__ = ("_buf", "_wiped", "_locked")

    def __init__(self, value: bytes | bytearray | str):
        if not _protected:
            protect_process()
        if isinstance(value, str):
            value = value.encode("utf-8")
        self._buf = bytearray(value)
        self._wiped = False
        self._locked = _memlock.lock(self._buf)

    def reveal(self) -> bytes:
        if self._wiped:
            raise ValueError("secret has been wiped")
        return bytes(self._buf)

    def reveal_text(self) -> str:
        return self.reveal().decode("utf-8")

    def __len__(self) -> int:
        return len(self._buf)

    def wipe(self) -> None:
        buf = getattr(self, "_buf", None)
        if buf is None:
            return
        if len(buf):
            buf[:] = bytes(len(buf))  # same length: overwritten in place, no reallocation
        if getattr(self, "_locked", False):
            _memlock.unlock(buf)
            self._locked = False
        self._wiped = True

    def __del__(self) -> None:
        try:
            self.wipe()
        except Exception:  # at interpreter shutdown modules may be gone
            pass

    @property
    def wiped(self) -> bool:
        return self._wiped

    def __enter__(self) -> "Secret":
        return self

    def __exit__(self, *exc) -> None:
        self.wipe()

    def __repr__(self) -> str:
        return "Secret(<redacted>)" if not self._wiped else "Secret(<wiped>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        import hmac

        if isinstance(other, Secret):
            return hmac.compare_digest(self._buf, other._buf)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):  # never pickle a secret by accident
        raise TypeError("Secret objects cannot be pickled")


class _MemLock:
    """mlock(2)/munlock(2) through ctypes, with per-page reference counts
    (munlock is not counted by the kernel: unlocking one buffer would unlock
    another living on the same page)."""

    def __init__(self):
        self._libc = None
        self._available: bool | None = None
        self._pages: dict[int, int] = {}
        self._mutex = threading.Lock()
        self.failure: str | None = None
        self.warned = False
        self.page = 4096

    def _setup(self) -> bool:
        if self._available is None:
            try:
                import ctypes

                # dlopen(NULL): the process's own symbols, libc's mlock among them.
                # ctypes.util.find_library would run ldconfig in a subprocess
                # (about 10 ms of every command's start).
                libc = ctypes.CDLL(None, use_errno=True)
                libc.mlock.argtypes = libc.munlock.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
                self._libc = libc
                self._ctypes = ctypes
                self.page = os.sysconf("SC_PAGE_SIZE")
                self._available = True
            except (OSError, AttributeError, ValueError, ImportError):
                self._available = False
                self.failure = "mlock is not available on this platform"
        return self._available

    def _range(self, buf: bytearray) -> tuple[int, list[int]]:
        ctypes = self._ctypes
        addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
        first = addr - addr % self.page
        last = (addr + len(buf) - 1) - (addr + len(buf) - 1) % self.page
        return addr, list(range(first, last + 1, self.page))

    def lock(self, buf: bytearray) -> bool:
        if not buf or os.environ.get("ZEROTRUST_NO_MLOCK") == "1" or not self._setup():
            return False
        addr, pages = self._range(buf)
        with self._mutex:
            new = [p for p in pages if p not in self._pages]
            for page in new:
                if self._libc.mlock(page, self.page) != 0:
                    errno = self._ctypes.get_errno()
                    for done in new[: new.index(page)]:
                        self._libc.munlock(done, self.page)
                    self._refused(errno)
                    return False
            for page in pages:
                self._pages[page] = self._pages.get(page, 0) + 1
        return True

    def unlock(self, buf: bytearray) -> None:
        if not buf or not self._available:
            return
        _addr, pages = self._range(buf)
        with self._mutex:
            for page in pages:
                count = self._pages.get(page, 0) - 1
                if count <= 0:
                    self._pages.pop(page, None)
                    self._libc.munlock(page, self.page)
                else:
                    self._pages[page] = count

    def _refused(self, errno: int) -> None:
        try:
            import resource

            soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
            limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft} bytes"
        except (ImportError, OSError, ValueError):
            limit = "unknown"
        self.failure = f"mlock refused ({os.strerror(errno)}; RLIMIT_MEMLOCK {limit})"
        if not self.warned:
            self.warned = True
            sys.stderr.write(f"zerotrust-admin: warning: cannot lock secret memory in RAM: {self.failure}; "
                             "secrets may be written to swap (raise 'ulimit -l' or grant CAP_IPC_LOCK)\n")

    def status(self) -> dict:
        return {"available": bool(self._available), "locked_pages": len(self._pages), "failure": self.failure}


_memlock = _MemLock()


def memory_lock_status() -> dict:
    """Whether secret buffers are being locked in RAM (for status commands and tests)."""
    return _memlock.status()


class _ProcessKey:
    _key: "Secret | None" = None
    _mutex = threading.Lock()

    @classmethod
    def get(cls) -> "Secret":
        with cls._mutex:
            if cls._key is None:
                cls._key = Secret(os.urandom(32))
            return cls._key


class SealedSecret:
    """A long-lived secret kept encrypted (AES-256-GCM) under a random key that
    exists only in this process's locked memory; decrypted on each access.

    For objects that live long (credentials held by the Python API, cached
    config secrets): a memory dump or a stray reference shows ciphertext.
    """

    __slots__ = ("_blob", "_size")
    _AAD = b"zt-sealed-secret-v1"

    def __init__(self, value: "bytes | bytearray | str | Secret"):
        from zerotrust_admin.crypto import seal

        if isinstance(value, Secret):
            value = value.reveal()
        elif isinstance(value, str):
            value = value.encode("utf-8")
        self._size = len(value)
        self._blob = seal(_ProcessKey.get().reveal(), bytes(value), self._AAD)

    def reveal(self) -> bytes:
        from zerotrust_admin.crypto import open_sealed

        if self._blob is None:
            raise ValueError("secret has been wiped")
        return open_sealed(_ProcessKey.get().reveal(), self._blob, self._AAD)

    def reveal_text(self) -> str:
        return self.reveal().decode("utf-8")

    def open(self) -> Secret:
        """A plain, wipeable ``Secret`` (use it as a context manager)."""
        return Secret(self.reveal())

    def __len__(self) -> int:
        return self._size

    def wipe(self) -> None:
        self._blob = None

    @property
    def wiped(self) -> bool:
        return self._blob is None

    def __enter__(self) -> "SealedSecret":
        return self

    def __exit__(self, *exc) -> None:
        self.wipe()

    def __repr__(self) -> str:
        return "SealedSecret(<redacted>)" if self._blob is not None else "SealedSecret(<wiped>)"

    __str__ = __repr__
    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        raise TypeError("SealedSecret objects cannot be pickled")


_URL_START = None


def redact_url(text: str, *, value: bool = False) -> str:
    """``text`` with the password of every URL's userinfo replaced by
    ``<redacted>``: ``redis://:PASS@host`` -> ``redis://:<redacted>@host``,
    ``https://user:pw@host/x`` -> ``https://user:<redacted>@host/x`` (threat
    model F5). A userinfo without a colon is a user name (RFC 3986) and is
    kept. Used wherever a configuration value or an error is shown.

    ``value=True`` when ``text`` is one configuration value rather than a
    message: a URL holds no whitespace, so a space does not end it and a
    password with a space (``redis://u:P4SS word@h``) is redacted whole. In a
    message a space ends the URL (else "redis://h:6379 for alice@EXAMPLE.COM"
    would lose its port)."""
    global _URL_START
    if "://" not in text or "@" not in text:
        return text
    if _URL_START is None:
        import re

        _URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
    out = []
    pos = 0
    for match in _URL_START.finditer(text):
        start = match.end()
        if start < pos:
            continue
        end = start
        while end < len(text) and text[end] not in "/?#" and (value or not text[end].isspace()) and text[end] not in "'\"<>":
            end += 1
        authority = text[start:end]
        at = authority.rfind("@")
        if at < 0 and ":" in authority:
            # a password with an unencoded "/" or "?" (redis://:ab/cd@host):
            # redact up to the last "@" of the token, at the price of hiding a
            # port in the rare https://host:8443/a@b
            token_end = end
            while token_end < len(text) and (value or not text[token_end].isspace()) and text[token_end] not in "'\"<>":
                token_end += 1
            at = text.rfind("@", start, token_end) - start
        colon = authority.find(":", 0, at) if at > 0 else -1
        if at <= 0 or colon < 0 or authority[colon + 1:at] == "<redacted>":
            continue
        out.append(text[pos:start + colon + 1])
        out.append("<redacted>")
        pos = start + at
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)

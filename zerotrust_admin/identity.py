"""Who the operator is and where they are (PRODUCT.md, "Operator identity").

Principal, in order: ZEROTRUST_PRINCIPAL (service accounts, cron), the default
principal of the Kerberos credential cache (FILE ccache read directly; only
while one of its tickets is unexpired), then ``<os-user>@<host>``. Source IP: the SSH client's address when on SSH, else
the host's own.
"""

from __future__ import annotations

import getpass
import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from zerotrust_admin.audit.log import Actor


def principal(environ: dict | None = None) -> str:
    return resolve(environ).principal


@dataclass(frozen=True)
class Identity:
    """Which principal was chosen, from which source, and why others were not."""

    principal: str
    source: str  # "env" | "kerberos" | "os"
    detail: str
    notes: tuple[str, ...] = ()
    expires: float | None = None

    def describe(self) -> str:
        return f"identity: {self.principal} ({self.detail})"


def resolve(environ: dict | None = None, *, now: float | None = None) -> Identity:
    """The operator principal, in order: ZEROTRUST_PRINCIPAL, a valid Kerberos
    ticket's default principal, the OS user. ``notes`` say why a Kerberos cache
    that exists was not used (expired, unreadable, damaged)."""
    env = os.environ if environ is None else environ
    explicit = env.get("ZEROTRUST_PRINCIPAL")
    if explicit:
        return Identity(explicit, "env", "from ZEROTRUST_PRINCIPAL")
    notes: list[str] = []
    cache = ccache_info(env, now=now)
    if cache.usable:
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cache.expires)) if cache.expires else "unknown"
        return Identity(cache.principal, "kerberos", f"Kerberos ticket in {cache.name}, valid until {until}", (), cache.expires)
    if cache.problem and cache.problem_kind not in ("missing", "unsupported"):
        notes.append(cache.problem)
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.geteuid())
    fallback = f"{user}@{socket.gethostname()}"
    why = f"; {cache.problem}" if cache.problem else ""
    return Identity(fallback, "os", f"OS user at this host{why}", tuple(notes))


def source_ip(environ: dict | None = None) -> str:
    env = os.environ if environ is None else environ
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        value = env.get(var)
        if value:
            return value.split()[0]
    try:
        # No packet is sent: connecting a UDP socket only picks the outgoing address.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def current_actor(environ: dict | None = None) -> Actor:
    return Actor(user=principal(environ), source_ip=source_ip(environ))


def ccache_path(env) -> Path | None:
    name = env.get("KRB5CCNAME")
    if name:
        if name.startswith("FILE:"):
            return Path(name[5:])
        if ":" in name.split("/")[0]:
            return None  # KEYRING:, KCM:, MEMORY:, DIR: are not read directly
        return Path(name)
    return Path(f"/tmp/krb5cc_{os.getuid()}")  # nosec B108 - MIT Kerberos default ccache location, read only


def ccache_principal(env) -> str | None:
    """The default principal of a FILE credential cache (format versions 2-4)."""
    path = ccache_path(env)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(65536)
    except OSError:
        return None
    return parse_ccache_principal(data)


@dataclass(frozen=True)
class CcacheInfo:
    name: str
    principal: str | None = None
    expires: float | None = None  # latest end time of a non-config credential
    problem: str | None = None
    problem_kind: str | None = None  # missing | unsupported | unreadable | damaged | expired | empty

    @property
    def usable(self) -> bool:
        return self.principal is not None and self.problem is None


MAX_CCACHE_BYTES = 1 << 20


def ccache_info(env, *, now: float | None = None) -> CcacheInfo:
    """Read a FILE ccache: default principal and whether any ticket is still valid."""
    now = time.time() if now is None else now
    path = ccache_path(env)
    if path is None:
        return CcacheInfo(env.get("KRB5CCNAME", ""), problem=f"credential cache {env.get('KRB5CCNAME')} is not a FILE cache (not read)", problem_kind="unsupported")
    name = f"FILE:{path}"
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CCACHE_BYTES)
    except FileNotFoundError:
        return CcacheInfo(name, problem=f"no Kerberos credential cache at {path}", problem_kind="missing")
    except OSError as exc:
        return CcacheInfo(name, problem=f"Kerberos credential cache {path} is unreadable ({exc.strerror})", problem_kind="unreadable")
    parsed = parse_ccache(data)
    if parsed is None:
        return CcacheInfo(name, problem=f"Kerberos credential cache {path} is damaged or in an unknown format", problem_kind="damaged")
    default, end_times = parsed
    if not end_times:
        return CcacheInfo(name, default, problem=f"Kerberos credential cache {path} holds no ticket", problem_kind="empty")
    expires = max(end_times)
    if expires <= now:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return CcacheInfo(name, default, expires, problem=f"the Kerberos ticket for {default} in {path} expired at {when}", problem_kind="expired")
    return CcacheInfo(name, default, expires)


def parse_ccache(data: bytes) -> tuple[str, list[int]] | None:
    """(default principal, [end time of each ticket]) of a v3/v4 FILE ccache.

    Layout (MIT "ccache file format"): header, default principal, then
    credentials: client, server, keyblock, 4 times (auth, start, end, renew),
    is_skey, flags, addresses, authdata, ticket, second ticket. Configuration
    entries (server realm ``X-CACHECONF:``) are skipped.
    """
    default = parse_ccache_principal(data)
    if default is None or data[1] not in (3, 4):
        return None
    pos = 2
    try:
        if data[1] == 4:
            (header_len,) = struct.unpack_from(">H", data, pos)
            pos += 2 + header_len

        def u16() -> int:
            nonlocal pos
            (v,) = struct.unpack_from(">H", data, pos)
            pos += 2
            return v

        def u32() -> int:
            nonlocal pos
            (v,) = struct.unpack_from(">I", data, pos)
            pos += 4
            return v

        def octets() -> bytes:
            nonlocal pos
            length = u32()
            if pos + length > len(data):
                raise ValueError("short")
            value = data[pos : pos + length]
            pos += length
            return value

        def principal_at() -> tuple[str, list[bytes]]:
            u32()  # name type
            count = u32()
            if count > 64:
                raise ValueError("too many components")
            realm = octets()
            return realm.decode("utf-8", "replace"), [octets() for _ in range(count)]

        principal_at()  # default principal, parsed above
        end_times: list[int] = []
        while pos < len(data):
            principal_at()  # client
            server_realm, _ = principal_at()
            u16()  # enctype
            if data[1] == 3:
                u16()
            octets()  # key
            _auth, _start, end, _renew = u32(), u32(), u32(), u32()
            pos += 1  # is_skey
            u32()  # flags
            for _ in range(u32()):
                u16()
                octets()
            for _ in range(u32()):
                u16()
                octets()
            octets()  # ticket
            octets()  # second ticket
            if server_realm != "X-CACHECONF:":
                end_times.append(end)
        return default, end_times
    except (IndexError, struct.error, ValueError):
        return None


def parse_ccache_principal(data: bytes) -> str | None:
    try:
        if data[0] != 5 or data[1] not in (2, 3, 4):
            return None
        pos = 2
        if data[1] == 4:
            (header_len,) = struct.unpack_from(">H", data, pos)
            pos += 2 + header_len
        _name_type, count = struct.unpack_from(">II", data, pos)
        pos += 8

        def counted() -> str:
            nonlocal pos
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            value = data[pos : pos + length]
            if len(value) != length:
                raise ValueError("short")
            pos += length
            return value.decode("utf-8")

        realm = counted()
        components = [counted() for _ in range(count)]
        if not components or count > 16:
            return None
        return "/".join(components) + "@" + realm
    except (IndexError, struct.error, ValueError, UnicodeDecodeError):
        return None

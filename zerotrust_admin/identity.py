"""Who the operator is and where they are (PRODUCT.md, "Operator identity").

Principal, in order: ZEROTRUST_PRINCIPAL (service accounts, cron), the default
principal of the Kerberos credential cache (FILE ccache read directly), then
``<os-user>@<host>``. Source IP: the SSH client's address when on SSH, else
the host's own.
"""

from __future__ import annotations

import getpass
import os
import socket
import struct
from pathlib import Path

from zerotrust_admin.audit.log import Actor


def principal(environ: dict | None = None) -> str:
    env = os.environ if environ is None else environ
    explicit = env.get("ZEROTRUST_PRINCIPAL")
    if explicit:
        return explicit
    from_cache = ccache_principal(env)
    if from_cache:
        return from_cache
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.geteuid())
    return f"{user}@{socket.gethostname()}"


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
    return Path(f"/tmp/krb5cc_{os.getuid()}")


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

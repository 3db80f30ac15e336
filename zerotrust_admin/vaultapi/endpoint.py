"""Where a Vault token may go (threat-model row N1).

Every request to Vault carries the token (``X-Vault-Token``) or the AppRole
secret_id, so a ``http://`` endpoint sends them in clear to anyone on the path.
Only ``https://`` is accepted, and ``http://`` only to a loopback address
(127.0.0.0/8, ::1, ``localhost``): a dev server or a local agent on this host.
Both users of the Vault API (the hashicorp provider and the transit key
source) resolve their URL through ``check_url`` before any connection.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from zerotrust_admin.errors import UsageError

LOOPBACK_HINT = "use https://; http:// is accepted only for a loopback address (127.0.0.1, ::1, localhost)"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(parts) -> str:
    """scheme://host[:port]: never userinfo (a password) or a path."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def check_url(url: str, setting: str) -> str:
    """``url`` without a trailing slash, if a token may be sent there; else a
    UsageError (exit 2) naming ``setting``."""
    text = str(url).strip().rstrip("/")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"{setting} {text!r} is not an https:// URL", hint="e.g. https://vault.example.com:8200")
    try:
        parts.port
    except ValueError:
        raise UsageError(f"{setting} {_shown(parts)!r} has an invalid port") from None
    if scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(f"{setting} {_shown(parts)} is plain http: the Vault token would cross the network in clear; refused", hint=LOOPBACK_HINT)
    return text

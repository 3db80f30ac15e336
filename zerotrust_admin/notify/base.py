"""The ``NotificationChannel`` interface and the ``Notification`` message.

A channel sends one message once (``send_once``) within a timeout and raises
``DeliveryError`` (retryable or not); retries, backoff and auditing live in
``notify.delivery`` so every channel gets the same behaviour. Messages and
errors never carry a secret: a channel's endpoint URL may itself be a secret
(Slack webhooks), so ``describe()`` shows the host only and errors name the
status code, never the response body.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from zerotrust_admin.errors import ConfigError

SEVERITIES = ("critical", "error", "warning", "info")


class DeliveryError(Exception):
    """One failed attempt. ``retryable``: a timeout, a refused connection, 5xx, 429."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Notification:
    event: str                      # e.g. session_revocation, notify_test
    title: str                      # one line
    summary: str                    # a few lines, plain text
    severity: str = "critical"
    details: dict = field(default_factory=dict)   # flat, non-secret facts
    timestamp: float = field(default_factory=time.time)
    source: str = field(default_factory=socket.gethostname)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")

    def to_dict(self) -> dict:
        from datetime import datetime, timezone

        from zerotrust_admin.timeutil import rfc3339

        return {"id": self.id, "event": self.event, "title": self.title, "summary": self.summary, "severity": self.severity,
                "timestamp": rfc3339(datetime.fromtimestamp(self.timestamp, timezone.utc)), "source": self.source, "details": self.details}


@runtime_checkable
class NotificationChannel(Protocol):
    kind: str        # email | slack | pagerduty | webhook
    name: str        # what --channel selects: the ``name`` setting, else the kind

    def describe(self) -> str:
        """Where messages go, without secrets (host, recipients count)."""

    def send_once(self, note: Notification, timeout: float) -> None:
        """Deliver once or raise DeliveryError."""


def channel_secret(config, settings: dict, key: str, where: str):
    """A channel's secret setting: the value (``${VAR}`` already expanded),
    ``<key>_file``, or ``vault:NAME``. Returns a Secret or None."""
    from pathlib import Path

    from zerotrust_admin.config.loader import read_secret_file
    from zerotrust_admin.secret import Secret

    value = settings.get(key)
    if isinstance(value, str) and value.startswith("vault:"):
        if getattr(config, "secret_resolver", None) is None:
            raise ConfigError(f"{where}.{key} refers to {value!r} but no secret provider is available to resolve it")
        return config.secret_resolver(value[len("vault:"):])
    if value not in (None, ""):
        return Secret(str(value))
    path = settings.get(key + "_file")
    if path:
        return Secret(read_secret_file(Path(str(path)).expanduser(), f"{where}.{key}_file"))
    return None


def check_endpoint(url: str, where: str) -> str:
    """https anywhere; plain http only to loopback (tests, local relays)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{where} must be an http(s) URL", hint="e.g. https://hooks.example.com/...")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConfigError(f"{where} uses plain http to {host}; only https is allowed off this host",
                              hint="use an https:// endpoint (plain http is accepted for 127.0.0.1 only)")
    return url


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"

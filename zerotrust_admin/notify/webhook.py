"""Generic signed webhook: POST the notification as JSON with

    X-ZeroTrust-Timestamp: <unix seconds>
    X-ZeroTrust-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

so the receiver can check origin and integrity, and refuse replays by
rejecting old timestamps (docs/notifications.md has a verifier).
"""

from __future__ import annotations

import json
import time

from zerotrust_admin.crypto import hmac_sha256
from zerotrust_admin.errors import ConfigError
from zerotrust_admin.notify.base import Notification, channel_secret, check_endpoint, host_of
from zerotrust_admin.notify.http import post

TIMESTAMP_HEADER = "X-ZeroTrust-Timestamp"
SIGNATURE_HEADER = "X-ZeroTrust-Signature"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac_sha256(secret, timestamp.encode("ascii") + b"." + body).hex()


class WebhookChannel:
    kind = "webhook"

    def __init__(self, config, settings: dict, name: str):
        self.name = name
        where = f"security.breach_notification.channels[{name}]"
        url = settings.get("url") or settings.get("webhook_url")
        if not url:
            raise ConfigError(f"{where}: webhook needs url")
        self.url = check_endpoint(str(url), f"{where}.url")
        self._secret = channel_secret(config, settings, "secret", where)
        if self._secret is None:
            raise ConfigError(f"{where}: webhook needs secret_file (the HMAC signing key)",
                              hint="create a random key: head -c 32 /dev/urandom | base64 > webhook.key; chmod 600 webhook.key")
        self.ca_file = settings.get("ca_file")

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r})"

    def describe(self) -> str:
        return f"signed webhook at {host_of(self.url)}"

    def send_once(self, note: Notification, timeout: float) -> None:
        body = json.dumps(note.to_dict(), separators=(",", ":"), sort_keys=True).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self._secret.reveal(), timestamp, body)}
        post(self.url, body, timeout=timeout, headers=headers, ca_file=self.ca_file, what="webhook")

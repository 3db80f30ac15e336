"""PagerDuty Events API v2 (``POST /v2/enqueue``, answered 202). The
integration (routing) key comes from ``integration_key_file``, ``${VAR}`` or
``vault:NAME``; ``events_url`` points elsewhere (EU service, tests)."""

from __future__ import annotations

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.notify.base import Notification, channel_secret, check_endpoint, host_of
from zerotrust_admin.notify.http import post_json

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyChannel:
    kind = "pagerduty"

    def __init__(self, config, settings: dict, name: str):
        self.name = name
        where = f"security.breach_notification.channels[{name}]"
        secret = channel_secret(config, settings, "integration_key", where) or channel_secret(config, settings, "routing_key", where)
        if secret is None:
            raise ConfigError(f"{where}: pagerduty needs integration_key (or integration_key_file)")
        with secret:
            self._key = secret.reveal().decode("utf-8").strip()
        self.url = check_endpoint(str(settings.get("events_url") or DEFAULT_EVENTS_URL), f"{where}.events_url")
        self.ca_file = settings.get("ca_file")

    def __repr__(self) -> str:
        return f"PagerDutyChannel(name={self.name!r})"

    def describe(self) -> str:
        return f"pagerduty events at {host_of(self.url)}"

    def payload(self, note: Notification) -> dict:
        body = note.to_dict()
        return {
            "routing_key": self._key,
            "event_action": "trigger",
            "dedup_key": note.id,
            "payload": {
                "summary": note.title[:1024],
                "source": note.source,
                "severity": note.severity,
                "timestamp": body["timestamp"],
                "component": "zerotrust-admin",
                "class": note.event,
                "custom_details": {"summary": note.summary, **note.details},
            },
        }

    def send_once(self, note: Notification, timeout: float) -> None:
        post_json(self.url, self.payload(note), timeout=timeout, ok=(202, 200), ca_file=self.ca_file, what="pagerduty events API")

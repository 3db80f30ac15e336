"""Slack incoming webhook. The webhook URL is a secret (anyone holding it can
post): take it from ``webhook_url_file``, ``${VAR}`` or ``vault:NAME``."""

from __future__ import annotations

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.notify.base import Notification, channel_secret, check_endpoint, host_of
from zerotrust_admin.notify.http import post_json

EMOJI = {"critical": ":rotating_light:", "error": ":x:", "warning": ":warning:", "info": ":information_source:"}


class SlackChannel:
    kind = "slack"

    def __init__(self, config, settings: dict, name: str):
        self.name = name
        where = f"security.breach_notification.channels[{name}]"
        secret = channel_secret(config, settings, "webhook_url", where)
        if secret is None:
            raise ConfigError(f"{where}: slack needs webhook_url (or webhook_url_file)")
        with secret:
            self._url = check_endpoint(secret.reveal().decode("utf-8").strip(), f"{where}.webhook_url")
        self.ca_file = settings.get("ca_file")

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r})"

    def describe(self) -> str:
        return f"slack webhook at {host_of(self._url)}"

    @staticmethod
    def payload(note: Notification) -> dict:
        facts = "\n".join(f"*{k}*: {v}" for k, v in note.details.items())
        text = f"{EMOJI[note.severity]} {note.title}"
        return {
            "text": text,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": note.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": note.summary + ("\n" + facts if facts else "")}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{note.event} · {note.source} · id {note.id}"}]},
            ],
        }

    def send_once(self, note: Notification, timeout: float) -> None:
        post_json(self._url, self.payload(note), timeout=timeout, ok=(200,), ca_file=self.ca_file, what="slack webhook")

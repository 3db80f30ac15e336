"""``notify test``: one test message through the configured channels."""

from __future__ import annotations

from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.notify import Notification, Policy, channel_specs, deliver, open_channels


def send_test(config, *, only: str | None = None, audit=None, actor=None) -> list:
    if not channel_specs(config):
        raise NotFoundError("no breach-notification channels are configured", hint="add security.breach_notification.channels (docs/notifications.md)")
    channels = open_channels(config, only)
    who = actor.user if actor is not None else "zerotrust-admin"
    note = Notification(event="notify_test", title="ZeroTrust: test notification", severity="info",
                        summary=f"Test message sent by {who} with `zerotrust-admin notify test`. No action needed.",
                        details={"operator": who})
    return deliver(channels, note, Policy.from_config(config), audit=audit, actor=actor, trigger="notify_test")

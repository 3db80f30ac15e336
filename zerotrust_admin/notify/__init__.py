"""Breach notifications: the channel registry and ``open_channels(config)``.

Config (the seed's block, accepted as written)::

    security:
      breach_notification:
        enabled: true
        retries: 2            # extra attempts per channel
        timeout_seconds: 5    # per attempt
        channels:
          - email: {recipients: [...], smtp_host: ..., smtp_port: 587, sender: ..., starttls: true, password_file: ...}
          - slack: {webhook_url_file: ...}
          - pagerduty: {integration_key_file: ..., events_url: ...}
          - webhook: {url: ..., secret_file: ...}

A channel item is ``{kind: {settings}}``, ``{type: kind, ...settings}`` or
just ``kind``. ``name:`` in the settings names it for ``--channel``; the
default name is the kind (``slack-2`` for a second Slack channel). Adding a
channel is one module plus one line in ``CHANNELS``.
"""

from __future__ import annotations

import importlib

from zerotrust_admin.errors import ConfigError, NotFoundError
from zerotrust_admin.notify.base import DeliveryError, Notification, NotificationChannel
from zerotrust_admin.notify.delivery import DeliveryResult, Policy, deliver

CHANNELS: dict[str, str] = {
    "email": "zerotrust_admin.notify.email:EmailChannel",
    "slack": "zerotrust_admin.notify.slack:SlackChannel",
    "pagerduty": "zerotrust_admin.notify.pagerduty:PagerDutyChannel",
    "webhook": "zerotrust_admin.notify.webhook:WebhookChannel",
}


def enabled(config) -> bool:
    block = config.get("security.breach_notification") or {}
    return bool(block.get("enabled", bool(block.get("channels"))))


def channel_specs(config) -> list[tuple[str, str, dict]]:
    """[(name, kind, settings)] from the config, validated, in order."""
    block = config.get("security.breach_notification") or {}
    items = block.get("channels") or []
    specs, seen = [], {}
    for i, item in enumerate(items):
        where = f"security.breach_notification.channels[{i}]"
        if isinstance(item, str):
            kind, settings = item, {}
        elif isinstance(item, dict) and "type" in item:
            kind, settings = str(item["type"]), {k: v for k, v in item.items() if k != "type"}
        elif isinstance(item, dict) and len(item) == 1:
            kind, settings = next(iter(item.items()))
            settings = settings or {}
        else:
            raise ConfigError(f"{where} must be a channel such as '- slack: {{webhook_url_file: ...}}'")
        kind = str(kind).lower()
        if kind not in CHANNELS:
            raise ConfigError(f"{where}: unknown channel {kind!r}", hint=f"one of {', '.join(CHANNELS)}")
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}: the {kind} settings must be a mapping")
        name = str(settings.get("name") or kind)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        specs.append((name, kind, settings))
    return specs


def open_channels(config, only: str | None = None) -> list:
    """Build the configured channels (all, or the one named ``only``)."""
    specs = channel_specs(config)
    if only is not None:
        specs = [s for s in specs if only in (s[0], s[1])]
        if not specs:
            raise NotFoundError(f"no notification channel named {only!r} is configured",
                                hint="see security.breach_notification.channels; names are the kind or the 'name' setting")
    channels = []
    for name, kind, settings in specs:
        module_name, _, cls = CHANNELS[kind].partition(":")
        channels.append(getattr(importlib.import_module(module_name), cls)(config, settings, name))
    return channels


def send(config, note: Notification, *, audit=None, actor=None, only: str | None = None) -> list[DeliveryResult]:
    """Deliver ``note`` through the configured channels (or the one named
    ``only``). Never raises for a channel: a broken channel configuration comes
    back (and is audited) as a failed result named ``(config)``, because callers
    send after their real work is done and must not be undone by a notification."""
    from zerotrust_admin.errors import ZeroTrustError

    try:
        channels = open_channels(config, only)
    except ZeroTrustError as exc:
        if only is not None:
            raise
        if audit is not None and actor is not None:
            audit.append(event="notification", action="notify", resource="channel:(config)", success=False, actor=actor,
                         about=note.event, error=exc.message)
        return [DeliveryResult(channel="(config)", kind="config", ok=False, attempts=0, elapsed=0.0, error=exc.message)]
    return deliver(channels, note, Policy.from_config(config), audit=audit, actor=actor, trigger=note.event)


def notify_event(config, *, event: str, summary: str, details: dict | None = None, title: str | None = None,
                 severity: str = "warning", audit=None, actor=None) -> list[DeliveryResult]:
    """One-call notification for other features (lockout, anomalies): nothing is
    sent unless ``security.breach_notification`` is enabled with channels."""
    if not enabled(config) or not channel_specs(config):
        return []
    note = Notification(event=event, title=title or f"ZeroTrust: {event.replace('_', ' ')}", summary=summary,
                        severity=severity, details=dict(details or {}))
    return send(config, note, audit=audit, actor=actor)


send_event = notify_event

__all__ = ["CHANNELS", "DeliveryError", "DeliveryResult", "Notification", "NotificationChannel", "Policy",
           "channel_specs", "deliver", "enabled", "notify_event", "open_channels", "send", "send_event"]

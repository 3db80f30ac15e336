"""Send high-severity anomaly findings through the breach-notification channels."""

from __future__ import annotations

from zerotrust_admin.anomaly.detectors import SEVERITY_ORDER, AnomalyReport
from zerotrust_admin.errors import UsageError


def notify_findings(config, report: AnomalyReport, *, audit=None, actor=None, minimum: str = "high") -> list[dict]:
    """One notification summarising the findings at ``minimum`` severity or above.

    Returns the per-channel delivery results (empty when there was nothing to
    send). Uses ``zerotrust_admin.notify`` (channels, retries, auditing of each
    delivery); a channel that is down is reported, never raised.
    """
    selected = [f for f in report.findings if SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER[minimum]]
    if not selected:
        return []
    try:
        from zerotrust_admin import notify
    except ImportError:  # pragma: no cover - the notify package ships with the tool
        raise UsageError("breach notifications are not available in this installation") from None
    if not notify.enabled(config) or not notify.channel_specs(config):
        raise UsageError("--notify needs security.breach_notification with at least one channel",
                         hint="configure a channel, then check it with: zerotrust-admin notify test")
    lines = [f"[{f.severity}] {f.kind}: {f.title} ({f.start} .. {f.end}, {f.count} records)" for f in selected[:20]]
    if len(selected) > 20:
        lines.append(f"... and {len(selected) - 20} more")
    kinds: dict[str, int] = {}
    for f in selected:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    note = notify.Notification(
        event="audit_anomaly",
        title=f"{len(selected)} {minimum}-severity audit anomalies since {report.since}",
        summary="\n".join(lines),
        severity="critical" if minimum == "high" else "warning",
        details={"since": report.since, "until": report.until, "findings": len(selected),
                 **{f"kind_{k}": v for k, v in sorted(kinds.items())},
                 "finding_ids": ",".join(f.id for f in selected[:50])},
    )
    results = notify.deliver(notify.open_channels(config), note, notify.Policy.from_config(config), audit=audit, actor=actor, trigger="audit_anomaly")
    return [r.to_dict() for r in results]

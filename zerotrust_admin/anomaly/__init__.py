"""Anomaly detection over the audit log (``audit anomalies``)."""

from __future__ import annotations

from datetime import datetime

from zerotrust_admin.anomaly.detectors import AnomalyEngine, AnomalyReport, Finding, Options, detect
from zerotrust_admin.anomaly.geo import Locator

__all__ = ["AnomalyEngine", "AnomalyReport", "Finding", "Options", "detect", "engine_from_config", "iter_records", "review", "run_anomalies"]


def engine_from_config(config, since: datetime, until: datetime, baseline_days: int | None = None) -> AnomalyEngine:
    """An engine with the options of ``security.anomaly_detection`` and the
    ``security.network_locations`` map (plus ``anomaly_detection.geoip_db``)."""
    section = config.get("security.anomaly_detection") or {}
    if not isinstance(section, dict):
        section = {}
    locator = Locator(config.get("security.network_locations"), section.get("geoip_db"))
    options = Options.from_config(section)
    if baseline_days:
        options.baseline_days = int(baseline_days)
    return AnomalyEngine(since, until, options, locator)


def iter_records(lines, stats: dict | None = None):
    """Parsed records from (line number, raw) pairs; unreadable lines are counted, not fatal."""
    from zerotrust_admin.audit.search import parse_line

    for number, raw in lines:
        try:
            record = parse_line(raw)
        except ValueError:
            if stats is not None:
                stats["unreadable"] = stats.get("unreadable", 0) + 1
            continue
        if isinstance(record, dict):
            yield record


def run_anomalies(log, config, since: datetime, until: datetime, baseline_days: int | None = None) -> AnomalyReport:
    engine = engine_from_config(config, since, until, baseline_days)
    stats: dict = {}
    for record in iter_records(log.lines(), stats):
        engine.feed(record)
    report = engine.finish()
    report.stats["unreadable"] += stats.get("unreadable", 0)
    return report


def review(log, config, actor, since: datetime, until: datetime, *, baseline_days: int | None = None, notify: bool = False) -> tuple[AnomalyReport, list[dict]]:
    """``audit anomalies``: detect, optionally notify high-severity findings, and
    record the review itself in the audit log (evidence of log review)."""
    report = run_anomalies(log, config, since, until, baseline_days)
    high = sum(1 for f in report.findings if f.severity == "high")
    deliveries: list[dict] = []
    if notify and high:
        from zerotrust_admin.anomaly.alerts import notify_findings

        deliveries = notify_findings(config, report, audit=log, actor=actor)
    log.append(event="anomaly_review", action="review", resource=str(log.path), success=True, actor=actor,
               since=report.since, until=report.until, findings=len(report.findings), high=high,
               notified=sum(1 for d in deliveries if d.get("ok")))
    return report, deliveries

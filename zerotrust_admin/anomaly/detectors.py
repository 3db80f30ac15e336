"""Anomaly detectors over the audit log, in one streaming pass.

The log is chronological. The baseline rolls: each record from ``since`` on
is judged against everything before it (from ``since - baseline_days`` on,
including the earlier records of the window itself that were not flagged),
then learnt. So a window may cover the whole history of the log: the first
weeks teach the profile and the later records are tested against it. Records
that were flagged do not teach the profile (an attacker cannot train it by
repetition within one run). Memory is bounded by users x networks plus the
open findings, never by the number of records. Method and measured
precision/recall: docs/anomaly-detection.md.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from zerotrust_admin.anomaly.geo import Location, Locator, haversine_km, network_of

SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2}
MAX_SEQS = 50
SENSITIVE_ACTIONS = {"write", "delete", "destroy", "export", "import", "rotate", "revoke", "restore"}


@dataclass
class Options:
    baseline_days: int = 28
    min_baseline_days: int = 7  # CloudTrail Insights also wants 7 days before it flags volume
    hour_min_baseline: int = 40  # records a user needs before their hours mean anything
    network_min_baseline: int = 10  # records a user needs before a new network (or location) is judged
    hour_max_fraction: float = 0.002  # an hour (+-1) holding under 0.2 % of the user's baseline is unusual
    spike_sigma: float = 6.0
    spike_peak_factor: float = 2.0  # and above twice the busiest baseline hour
    spike_min_events: int = 30
    overall_peak_factor: float = 1.5
    overall_min_events: int = 100
    failure_threshold: int = 10
    failure_window_seconds: int = 300
    spray_min_users: int = 3
    max_speed_kmh: float = 900.0  # airliner cruise; faster is impossible travel
    v4_prefix: int = 24
    v6_prefix: int = 48

    @classmethod
    def from_config(cls, section: dict | None) -> "Options":
        opts = cls()
        for key, value in (section or {}).items():
            if hasattr(opts, key) and not isinstance(value, (dict, list)) and value is not None:
                setattr(opts, key, type(getattr(opts, key))(value))
        return opts


@dataclass
class Finding:
    kind: str
    severity: str
    user: str
    title: str
    start: str
    end: str
    count: int
    evidence: dict
    seqs: list[int] = field(default_factory=list)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            digest = hashlib.sha256(f"{self.kind}\0{self.user}\0{self.start}\0{self.title}".encode()).hexdigest()
            self.id = f"{self.kind[:2]}-{digest[:10]}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AnomalyReport:
    since: str
    until: str
    baseline_start: str
    findings: list[Finding]
    notes: list[str]
    stats: dict

    def to_dict(self) -> dict:
        return {"since": self.since, "until": self.until, "baseline_start": self.baseline_start, "stats": self.stats,
                "notes": self.notes, "findings": [f.to_dict() for f in self.findings]}

    def by_severity(self, minimum: str = "low") -> list[Finding]:
        floor = SEVERITY_ORDER[minimum]
        return [f for f in self.findings if SEVERITY_ORDER[f.severity] >= floor]


def _fmt(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _Bucket:
    __slots__ = ("count", "seqs", "first", "last", "failures", "sensitive", "ip")

    def __init__(self):
        self.count = 0
        self.seqs: list[int] = []
        self.first = None
        self.last = None
        self.failures = 0
        self.sensitive = 0
        self.ip = ""

    def add(self, seq, ts, success, action):
        self.count += 1
        if len(self.seqs) < MAX_SEQS and seq is not None:
            self.seqs.append(seq)
        if self.first is None:
            self.first = ts
        self.last = ts
        if not success:
            self.failures += 1
        if action in SENSITIVE_ACTIONS:
            self.sensitive += 1


class _Series:
    """One rolling series of hourly counts (a user's, or everyone's): the open
    hour (with its window bucket) and the statistics of the completed hours
    that were learnt (a spike is not learnt)."""

    __slots__ = ("hour", "n", "bucket", "total", "sumsq", "peak", "last_spike")

    def __init__(self):
        self.hour = None
        self.n = 0
        self.bucket: _Bucket | None = None
        self.total = 0
        self.sumsq = 0
        self.peak = 0
        self.last_spike: Finding | None = None

    def learn(self) -> None:
        n = self.n
        self.total += n
        self.sumsq += n * n
        if n > self.peak:
            self.peak = n

    def over(self, hours: float) -> tuple[float, float, int]:
        if hours <= 0:
            return 0.0, 0.0, self.peak
        mean = self.total / hours
        return mean, math.sqrt(max(0.0, self.sumsq / hours - mean * mean)), self.peak


class AnomalyEngine:
    """Feed records in log order with ``feed``; ``finish`` returns the report.

    Rolling baseline: every record of the window is judged against the
    records before it (from ``baseline_start`` on), then learnt unless it was
    flagged."""

    def __init__(self, since: datetime, until: datetime, options: Options | None = None, locator: Locator | None = None):
        self.opts = options or Options()
        self.since = since
        self.until = until
        self.baseline_start = since - timedelta(days=self.opts.baseline_days)
        self.locator = locator or Locator()
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.records_baseline = 0
        self.records_window = 0
        self.unreadable = 0
        self.first_ts: datetime | None = None  # first record at or after baseline_start
        self._first_epoch = 0.0
        self._min_history_s = self.opts.min_baseline_days * 86400
        self._since_epoch = since.timestamp()
        # the rolling profile
        self.hours = defaultdict(lambda: [0] * 24)
        self.user_total = defaultdict(int)
        self.networks: dict[str, set] = defaultdict(set)
        self.places: dict[str, set] = defaultdict(set)
        self.series: dict[str, _Series] = {}
        self.overall = _Series()
        # open findings of the window
        self.off_hour = {}  # (user, date-hour) -> bucket
        self.volume: list[Finding] = []
        self.spike_hours_unjudged = 0
        self.new_nets = {}  # (user, net) -> bucket
        self.new_places = {}
        self.last_place: dict[str, tuple[Location, datetime, str, int]] = {}
        self.travel: dict[tuple, Finding] = {}
        self.fail_user: dict[str, deque] = defaultdict(deque)
        self.fail_ip: dict[str, deque] = defaultdict(deque)
        self.open_bursts: dict[tuple, dict] = {}
        self.closed_bursts: list[dict] = []
        self._net_cache: dict[str, str] = {}
        self._burst_users: set = set()

    # --- feeding ----------------------------------------------------------
    def feed(self, record: dict) -> None:
        ts = parse_ts(record.get("timestamp"))
        if ts is None:
            self.unreadable += 1
            return
        if ts < self.baseline_start or ts >= self.until:
            return
        if self.first_ts is None:
            self.first_ts = ts
            self._first_epoch = ts.timestamp()
        user = record.get("user") or "?"
        ip = record.get("source_ip") or ""
        success = record.get("success") is not False
        seq = record.get("seq")
        action = record.get("action")
        hour_index = int(ts.timestamp() // 3600)
        net = self._net_cache.get(ip)
        if net is None:
            net = network_of(ip, self.opts.v4_prefix, self.opts.v6_prefix)
            if len(self._net_cache) < 200_000:
                self._net_cache[ip] = net
        place = self.locator.locate(ip) if self.locator.enabled else None
        in_window = ts >= self.since
        series = self.series.get(user)
        if series is None:
            series = self.series[user] = _Series()
        self._tick(user, series, hour_index, in_window, seq, ts, success, action)
        self._tick(None, self.overall, hour_index, in_window, seq, ts, success, action)
        if in_window:
            self.records_window += 1
            self._window(user, ip, net, place, ts, success, seq, action)
        else:
            self.records_baseline += 1
            self.hours[user][ts.hour] += 1
            self.user_total[user] += 1
            self.networks[user].add(net)
            if place is not None:
                self.places[user].add(place.name)
        if place is not None:
            self._travel(user, place, ts, ip, seq)
        if not success:
            self._failure(user, ip, ts, seq)
        elif user in self._burst_users:
            self._success_after_failures(user, ts, seq)

    def _tick(self, user, series: _Series, hour_index, in_window, seq, ts, success, action) -> None:
        if series.hour != hour_index:
            if series.hour is not None:
                self._close_hour(user, series)
            series.hour = hour_index
            series.n = 0
            series.bucket = None
        series.n += 1
        if in_window:
            if series.bucket is None:
                series.bucket = _Bucket()
            series.bucket.add(seq, ts, success, action)

    def _close_hour(self, user, series: _Series) -> None:
        """The hour is over: judge it (if it lies in the window) against the
        hours before it, then learn it unless it was a spike."""
        if series.bucket is None or not self._spike(user, series):
            series.learn()

    def _spike(self, user, series: _Series) -> bool:
        hour_index, b = series.hour, series.bucket
        history_s = hour_index * 3600 - self._first_epoch
        if history_s < self._min_history_s:
            if user is not None:
                self.spike_hours_unjudged += 1
            return False
        o = self.opts
        history_days = history_s / 86400
        mean, std, peak = series.over(history_s / 3600)
        hour_start = _fmt(datetime.fromtimestamp(hour_index * 3600, timezone.utc))
        if user is None:
            threshold = max(o.overall_min_events, mean + o.spike_sigma * std, o.overall_peak_factor * peak)
            if b.count <= threshold:
                return False
            self.volume.append(Finding("volume_spike_overall", "medium", "*", f"all users: {b.count} records in one hour (baseline mean {mean:.1f}/h, peak {peak})",
                                       _fmt(b.first), _fmt(b.last), b.count,
                                       {"hour_start": hour_start, "count": b.count, "baseline_mean_per_hour": round(mean, 2),
                                        "baseline_std": round(std, 2), "baseline_peak_hour": peak, "threshold": round(threshold, 1),
                                        "baseline_days": round(history_days, 1)}, b.seqs))
            return True
        threshold = max(o.spike_min_events, mean + o.spike_sigma * std, o.spike_peak_factor * peak)
        if b.count <= threshold:
            return False
        severity = "high" if b.count > 2 * threshold or b.sensitive else "medium"
        prev = series.last_spike
        if prev is not None and prev.evidence.get("_last_hour") == hour_index - 1:
            prev.count += b.count  # the spike continues into the next hour
            prev.end = _fmt(b.last)
            prev.evidence["_last_hour"] = hour_index
            prev.evidence["hours"] += 1
            prev.seqs = (prev.seqs + b.seqs)[:MAX_SEQS]
            prev.severity = max(prev.severity, severity, key=SEVERITY_ORDER.get)
            prev.title = f"{user}: {prev.count} records in {prev.evidence['hours']} hours (baseline mean {prev.evidence['baseline_mean_per_hour']:.2f}/h, peak {prev.evidence['baseline_peak_hour']})"
            return True
        finding = Finding("volume_spike", severity, user, f"{user}: {b.count} records in one hour (baseline mean {mean:.2f}/h, peak {peak})",
                          _fmt(b.first), _fmt(b.last), b.count,
                          {"hour_start": hour_start, "count": b.count, "baseline_mean_per_hour": round(mean, 3), "baseline_std": round(std, 3),
                           "baseline_peak_hour": peak, "threshold": round(threshold, 1), "baseline_days": round(history_days, 1),
                           "hours": 1, "_last_hour": hour_index}, b.seqs)
        series.last_spike = finding
        self.volume.append(finding)
        return True

    def _window(self, user, ip, net, place, ts, success, seq, action) -> None:
        """Judge one record of the window against the profile built from the
        records before it, then learn it unless it was flagged."""
        o = self.opts
        # unusual hour against the user's own hour-of-day profile (+-1 hour)
        total = self.user_total.get(user, 0)
        h = self.hours[user]
        flagged_hour = False
        if total >= o.hour_min_baseline:
            near = h[(ts.hour - 1) % 24] + h[ts.hour] + h[(ts.hour + 1) % 24]
            if near <= o.hour_max_fraction * total:
                flagged_hour = True
                key = (user, ts.strftime("%Y-%m-%dT%H"))
                bucket = self.off_hour.get(key)
                if bucket is None:
                    bucket = self.off_hour[key] = _Bucket()
                bucket.add(seq, ts, success, action)
        # a network never seen for this user
        key = (user, net)
        bucket = self.new_nets.get(key)
        if bucket is not None:
            bucket.add(seq, ts, success, action)  # the open finding accrues; the network is not learnt
        elif net not in self.networks[user]:
            if total >= o.network_min_baseline:
                bucket = self.new_nets[key] = _Bucket()
                bucket.ip = ip
                bucket.add(seq, ts, success, action)
            else:
                self.networks[user].add(net)  # too little history to judge: learn it
        if place is not None:
            key = (user, place.name)
            bucket = self.new_places.get(key)
            known = self.places[user]
            if bucket is not None:
                bucket.add(seq, ts, success, action)
            elif place.name not in known:
                if known and total >= o.network_min_baseline:
                    bucket = self.new_places[key] = _Bucket()
                    bucket.add(seq, ts, success, action)
                else:
                    known.add(place.name)
        if not flagged_hour:
            h[ts.hour] += 1
            self.user_total[user] = total + 1

    def _travel(self, user, place, ts, ip, seq) -> None:
        last = self.last_place.get(user)
        self.last_place[user] = (place, ts, ip, seq)
        if last is None or ts < self.since:
            return
        prev_place, prev_ts, prev_ip, prev_seq = last
        if prev_place.name == place.name:
            return
        km = haversine_km(prev_place, place)
        hours = max((ts - prev_ts).total_seconds() / 3600, 1 / 3600)
        speed = km / hours
        if km > 100 and speed > self.opts.max_speed_kmh:
            pair = (user, frozenset((prev_place.name, place.name)))
            existing = self.travel.get(pair)
            if existing is not None:  # flapping between the same two places: one finding
                existing.count += 1
                existing.end = _fmt(ts)
                existing.evidence["max_observed_speed_kmh"] = max(existing.evidence["max_observed_speed_kmh"], round(speed))
                if len(existing.seqs) < MAX_SEQS and seq is not None:
                    existing.seqs.append(seq)
                return
            self.travel[pair] = Finding(
                "impossible_travel", "high", user,
                f"{user}: {prev_place.name} -> {place.name}, {km:.0f} km in {hours * 60:.0f} min",
                _fmt(prev_ts), _fmt(ts), 2,
                {"from": prev_place.name, "to": place.name, "from_ip": prev_ip, "to_ip": ip, "distance_km": round(km),
                 "minutes": round(hours * 60, 1), "speed_kmh": round(speed), "max_observed_speed_kmh": round(speed),
                 "max_speed_kmh": self.opts.max_speed_kmh},
                [s for s in (prev_seq, seq) if s is not None],
            )

    def _failure(self, user, ip, ts, seq) -> None:
        window = timedelta(seconds=self.opts.failure_window_seconds)
        for kind, key, dq in (("user", user, self.fail_user[user]), ("ip", ip, self.fail_ip[ip])):
            dq.append((ts, seq, user))
            while dq and ts - dq[0][0] > window:
                dq.popleft()
            burst = self.open_bursts.get((kind, key))
            if burst is not None and ts - burst["last"] > window:
                self._close_burst((kind, key))
                burst = None
            if burst is None and len(dq) >= self.opts.failure_threshold and ts >= self.since:
                burst = self.open_bursts[(kind, key)] = {"kind": kind, "key": key, "first": dq[0][0], "last": ts, "count": 0,
                                                          "seqs": [], "users": set(), "success_after": None}
                for item in dq:
                    self._burst_add(burst, *item)
                if kind == "user":
                    self._burst_users = self._burst_users | {user}
            elif burst is not None:
                self._burst_add(burst, ts, seq, user)

    def _burst_add(self, burst, ts, seq, user) -> None:
        burst["count"] += 1
        burst["last"] = ts
        burst["users"].add(user)
        if len(burst["seqs"]) < MAX_SEQS and seq is not None:
            burst["seqs"].append(seq)

    def _success_after_failures(self, user, ts, seq) -> None:
        burst = self.open_bursts.get(("user", user))
        if burst is not None and burst["success_after"] is None and ts - burst["last"] <= timedelta(seconds=self.opts.failure_window_seconds):
            burst["success_after"] = (_fmt(ts), seq)

    def _close_burst(self, key) -> None:
        burst = self.open_bursts.pop(key)
        if key[0] == "user":
            self._burst_users = self._burst_users - {key[1]}
        self.closed_bursts.append(burst)

    # --- results ------------------------------------------------------------
    def finish(self) -> AnomalyReport:
        for user, series in self.series.items():  # the last open hours
            if series.hour is not None:
                self._close_hour(user, series)
                series.hour = None
        if self.overall.hour is not None:
            self._close_hour(None, self.overall)
            self.overall.hour = None
        for key in list(self.open_bursts):
            self._close_burst(key)
        findings: list[Finding] = []
        findings += self._hour_findings()
        findings += self._volume_findings()
        findings += self._network_findings()
        findings += list(self.travel.values())
        findings += self._burst_findings()
        findings.sort(key=lambda f: (-SEVERITY_ORDER[f.severity], f.start, f.kind, f.user))
        if self.locator.geoip_note:
            self.notes.append(self.locator.geoip_note)
        if not self.locator.enabled:
            self.notes.append("no security.network_locations map (and no MaxMind database): location and impossible-travel checks were not run")
        stats = {"baseline_records": self.records_baseline, "window_records": self.records_window, "unreadable": self.unreadable,
                 "baseline_days": round(self.history_days(), 2), "rolling": True, "users": len(self.user_total), "findings": len(findings)}
        return AnomalyReport(_fmt(self.since), _fmt(self.until), _fmt(self.baseline_start), findings, self.notes, stats)

    def history_days(self) -> float:
        """Days of log before the window (0 when the window covers all of it;
        the rolling baseline then learns from the window's own first records)."""
        if self.first_ts is None or self.first_ts >= self.since:
            return 0.0
        return (self.since - self.first_ts).total_seconds() / 86400

    def _hour_findings(self) -> list[Finding]:
        out = []
        runs: list[tuple[str, list[_Bucket]]] = []
        for (user, _hour), b in sorted(self.off_hour.items()):
            if runs and runs[-1][0] == user and (b.first - runs[-1][1][-1].last) <= timedelta(hours=2):
                runs[-1][1].append(b)  # consecutive unusual hours: one episode
            else:
                runs.append((user, [b]))
        for user, buckets in runs:
            h = self.hours[user]
            first, last = buckets[0].first, buckets[-1].last
            count = sum(b.count for b in buckets)
            sensitive = sum(b.sensitive for b in buckets)
            seqs = [s for b in buckets for s in b.seqs][:MAX_SEQS]
            hours_utc = sorted({b.first.hour for b in buckets})
            usual = sorted(range(24), key=lambda i: -h[i])[:3]
            severity = "high" if (sensitive or count >= 20) else "medium"
            out.append(Finding("unusual_hour", severity, user,
                               f"{user} active {first.strftime('%H:%M')}-{last.strftime('%H:%M')} UTC, outside their usual hours",
                               _fmt(first), _fmt(last), count,
                               {"hours_utc": hours_utc, "baseline_records": self.user_total[user],
                                "baseline_at_these_hours": sum(h[x] for x in hours_utc), "busiest_hours_utc": usual,
                                "failures": sum(b.failures for b in buckets)}, seqs))
        return out

    def _volume_findings(self) -> list[Finding]:
        out = list(self.volume)
        for f in out:
            f.evidence.pop("_last_hour", None)
        if self.spike_hours_unjudged:
            self.notes.append(f"volume spikes not evaluated for {self.spike_hours_unjudged} user-hours with less than "
                              f"{self.opts.min_baseline_days} days of history before them")
        return out

    def _network_findings(self) -> list[Finding]:
        out = []
        for (user, net), b in sorted(self.new_nets.items()):
            severity = "high" if b.failures or b.sensitive else "medium"
            known = sorted(self.networks[user])[:10]
            out.append(Finding("new_network", severity, user, f"{user} from network {net}, never seen for this user",
                               _fmt(b.first), _fmt(b.last), b.count,
                               {"network": net, "first_ip": getattr(b, "ip", ""), "known_networks": known, "failures": b.failures}, b.seqs))
        for (user, place), b in sorted(self.new_places.items()):
            out.append(Finding("new_location", "medium", user, f"{user} from {place}, a location never seen for this user",
                               _fmt(b.first), _fmt(b.last), b.count,
                               {"location": place, "known_locations": sorted(self.places[user])}, b.seqs))
        return out

    def _burst_findings(self) -> list[Finding]:
        out = []
        for burst in sorted(self.closed_bursts, key=lambda b: (b["first"], b["kind"], b["key"])):
            users = sorted(burst["users"])
            if burst["kind"] == "ip":
                if len(users) < self.opts.spray_min_users:
                    continue  # a single user's burst is reported per user
                title = f"{burst['count']} failures from {burst['key']} across {len(users)} users"
                who = "*"
            else:
                title = f"{burst['count']} failures for {burst['key']} within {self.opts.failure_window_seconds // 60} min"
                who = burst["key"]
            severity = "high" if burst["success_after"] or burst["count"] >= 3 * self.opts.failure_threshold or burst["kind"] == "ip" else "medium"
            evidence = {"failures": burst["count"], "threshold": self.opts.failure_threshold, "window_seconds": self.opts.failure_window_seconds,
                        "users": users[:20], "success_after": burst["success_after"][0] if burst["success_after"] else None}
            seqs = list(burst["seqs"])
            if burst["success_after"] and burst["success_after"][1] is not None and len(seqs) < MAX_SEQS:
                seqs.append(burst["success_after"][1])
            out.append(Finding("failure_burst", severity, who, title, _fmt(burst["first"]), _fmt(burst["last"]), burst["count"], evidence, seqs))
        return out


def detect(records, since: datetime, until: datetime, options: Options | None = None, locator: Locator | None = None) -> AnomalyReport:
    engine = AnomalyEngine(since, until, options, locator)
    for record in records:
        engine.feed(record)
    return engine.finish()

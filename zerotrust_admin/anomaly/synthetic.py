"""Realistic synthetic audit logs with labelled injected anomalies.

Used to measure the detectors (tests and docs/anomaly-detection.md) and by the
benchmarks (a million-record log in seconds). The population:

* people in four offices (London, New York, Singapore, Frankfurt; each its own
  time zone and 10.<office>.0.0/16 network), working weekdays from a personal
  start hour for about nine hours, 1-2 workstation addresses in a team /24
  plus the office VPN pool; reads dominate, some writes, lists and histories;
* service accounts working around the clock at a steady Poisson rate;
* benign noise the detectors must live with: late evenings and early starts,
  weekend sessions, deploy days with double volume, single typos and small
  typo clusters, DHCP address changes inside a known /24, and a few people who
  genuinely travel to another office during the detection window.

Injected anomalies (labelled, detection window only): ``unusual_hour``,
``volume_spike``, ``volume_spike_overall``, ``new_network``,
``impossible_travel``, ``failure_burst``. Labels carry the sequence numbers of
the injected records, so a finding can be matched to them exactly.
"""

from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

OFFICES = [
    # name, index, utc offset hours, lat, lon
    ("London", 1, 0, 51.5072, -0.1276),
    ("New York", 2, -5, 40.7128, -74.0060),
    ("Singapore", 3, 8, 1.3521, 103.8198),
    ("Frankfurt", 4, 1, 50.1109, 8.6821),
]
ANOMALY_KINDS = ("unusual_hour", "volume_spike", "volume_spike_overall", "new_network", "impossible_travel", "failure_burst")
TEAMS = ["payments", "identity", "data", "platform", "web", "billing", "search", "ml"]
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
         "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara", "zoe", "omar", "lena", "kofi", "mei", "ravi"]


def network_locations() -> list[dict]:
    """The ``security.network_locations`` entries matching the synthetic offices."""
    return [{"cidr": f"10.{idx}.0.0/16", "name": name, "lat": lat, "lon": lon} for name, idx, _, lat, lon in OFFICES]


@dataclass
class Label:
    id: str
    kind: str
    user: str
    start: str = ""
    end: str = ""
    seqs: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "user": self.user, "start": self.start, "end": self.end, "seqs": self.seqs}


@dataclass
class _Person:
    user: str
    office: int
    offset: int
    start_hour: float
    team: str
    ips: list[str]
    vpn_ip: str
    rate: float
    service: bool = False


def _fmt(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Synthetic:
    def __init__(self, *, days: int = 35, window_days: int = 7, users: int = 40, services: int = 4, events_per_day: float = 30.0,
                 seed: int = 7, end: datetime | None = None, anomalies_per_kind: int = 3, noise: bool = True):
        self.rng = random.Random(seed)
        self.days = days
        self.window_days = window_days
        self.end = (end or datetime(2026, 11, 1, tzinfo=timezone.utc)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(days=days)
        self.since = self.end - timedelta(days=window_days)
        self.noise = noise
        self.people: list[_Person] = []
        for i in range(users):
            office = OFFICES[i % len(OFFICES)]
            name = f"{FIRST[i % len(FIRST)]}{i // len(FIRST) or ''}@EXAMPLE.COM"
            subnet = self.rng.randrange(10, 200)
            ips = [f"10.{office[1]}.{subnet}.{self.rng.randrange(2, 250)}" for _ in range(self.rng.choice((1, 1, 2)))]
            self.people.append(_Person(name, office[1], office[2], self.rng.uniform(7.0, 10.0), self.rng.choice(TEAMS), ips,
                                       f"10.{office[1]}.250.{self.rng.randrange(2, 250)}", self.rng.uniform(0.5, 1.5) * events_per_day))
        for i in range(services):
            self.people.append(_Person(f"svc/broker-{i}@EXAMPLE.COM", 9, 0, 0.0, "platform", [f"10.9.0.{10 + i}"], "", self.rng.uniform(3, 8), True))
        self.labels: list[Label] = []
        self._injected: dict[int, list[tuple]] = {}  # day index -> events
        self._travellers: dict[str, tuple[int, int]] = {}
        if anomalies_per_kind:
            self._plan_anomalies(anomalies_per_kind)
        if noise:
            humans = [p for p in self.people if not p.service]
            for p in self.rng.sample(humans, max(1, len(humans) // 40)):
                day = self.rng.randrange(days - window_days, days)
                dest = self.rng.choice([o for o in OFFICES if o[1] != p.office])
                self._travellers[p.user] = (day, dest[1])

    # --- planning ------------------------------------------------------------
    def _human(self, exclude: set) -> _Person:
        humans = [p for p in self.people if not p.service and p.user not in self._travellers]
        if not humans:
            raise ValueError("the synthetic population needs at least one person")
        fresh = [p for p in humans if p.user not in exclude]
        return self.rng.choice(fresh or humans)  # small populations reuse people

    def _workday_in_window(self) -> tuple[int, datetime]:
        while True:
            day = self.rng.randrange(self.days - self.window_days, self.days)
            date = self.start + timedelta(days=day)
            if date.weekday() < 5:
                return day, date

    def _add(self, day: int, ts: datetime, label: Label, user: str, ip: str, action: str, resource: str, success: bool) -> None:
        self._injected.setdefault(day, []).append((ts, user, ip, action, resource, success, label))

    def _plan_anomalies(self, n: int) -> None:
        used: set = set()
        rng = self.rng
        counter = 0

        def label(kind: str, user: str) -> Label:
            nonlocal counter
            counter += 1
            lab = Label(f"L{counter:03d}", kind, user)
            self.labels.append(lab)
            return lab

        for _ in range(n):
            # access in the middle of the user's night
            p = self._human(used); used.add(p.user)
            day, date = self._workday_in_window()
            local_hour = rng.uniform(1.5, 4.0)
            t0 = date + timedelta(hours=(local_hour - p.offset) % 24)
            lab = label("unusual_hour", p.user)
            for _k in range(rng.randrange(5, 13)):
                self._add(day, t0 + timedelta(seconds=rng.uniform(0, 1500)), lab, p.user, p.ips[0], "read", f"{rng.choice(TEAMS)}/db/password", True)
            # exfiltration-like volume in one working hour
            p = self._human(used); used.add(p.user)
            day, date = self._workday_in_window()
            t0 = date + timedelta(hours=p.start_hour + 2 - p.offset)
            lab = label("volume_spike", p.user)
            for k in range(rng.randrange(150, 400)):
                self._add(day, t0 + timedelta(seconds=rng.uniform(0, 3000)), lab, p.user, p.ips[0], "read", f"{rng.choice(TEAMS)}/svc{k}/key", True)
            # a network never seen for this user
            p = self._human(used); used.add(p.user)
            day, date = self._workday_in_window()
            t0 = date + timedelta(hours=p.start_hour + 3 - p.offset)
            lab = label("new_network", p.user)
            ip = f"203.0.113.{rng.randrange(2, 250)}"
            for _k in range(rng.randrange(3, 9)):
                self._add(day, t0 + timedelta(seconds=rng.uniform(0, 1800)), lab, p.user, ip, "read", f"{p.team}/api/token", True)
            # impossible travel: a far office's network minutes after a local session
            p = self._human(used); used.add(p.user)
            day, date = self._workday_in_window()
            far = max((o for o in OFFICES if o[1] != p.office), key=lambda o: abs(o[2] - p.offset))
            t0 = date + timedelta(hours=p.start_hour + 1 - p.offset)
            lab = label("impossible_travel", p.user)
            self._add(day, t0, lab, p.user, p.ips[0], "read", f"{p.team}/db/password", True)
            ip = f"10.{far[1]}.{rng.randrange(10, 200)}.{rng.randrange(2, 250)}"
            for _k in range(rng.randrange(2, 6)):
                self._add(day, t0 + timedelta(minutes=rng.uniform(10, 40)), lab, p.user, ip, "read", f"{p.team}/db/password", True)
            # brute force: a burst of failures, sometimes ending in a success
            p = self._human(used); used.add(p.user)
            day, date = self._workday_in_window()
            t0 = date + timedelta(hours=p.start_hour + 4 - p.offset)
            lab = label("failure_burst", p.user)
            count = rng.randrange(12, 31)
            span = rng.uniform(60, 200)
            for k in range(count):
                self._add(day, t0 + timedelta(seconds=span * k / count), lab, p.user, p.ips[0], "unlock", "vault", False)
            if rng.random() < 0.5:
                self._add(day, t0 + timedelta(seconds=span + 5), lab, p.user, p.ips[0], "unlock", "vault", True)
        for _ in range(max(1, n // 3)):
            # everyone at once: a compromised automation hitting many accounts
            day, date = self._workday_in_window()
            t0 = date + timedelta(hours=rng.choice((13, 14, 15)))
            lab = label("volume_spike_overall", "*")
            for p in rng.sample([q for q in self.people if not q.service], min(20, len(self.people) // 2)):
                for k in range(25):
                    self._add(day, t0 + timedelta(seconds=rng.uniform(0, 3000)), lab, p.user, p.ips[0], "list", "*", True)

    # --- generation ----------------------------------------------------------
    def _day_events(self, day: int) -> list[tuple]:
        rng = self.rng
        date = self.start + timedelta(days=day)
        weekend = date.weekday() >= 5
        events: list[tuple] = []
        for p in self.people:
            if p.service:
                for hour in range(24):
                    for _k in range(_poisson(rng, p.rate)):
                        ts = date + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
                        events.append((ts, p.user, p.ips[0], "read", f"aws/roles/{p.team}-{rng.randrange(5)}", rng.random() > 0.002, None))
                continue
            if weekend and not (self.noise and rng.random() < 0.05):
                continue
            start = p.start_hour
            length = rng.uniform(8.0, 9.5)
            volume = p.rate
            if self.noise:
                r = rng.random()
                if r < 0.04:
                    length += rng.uniform(2.0, 4.0)  # a late evening
                elif r < 0.07:
                    start -= rng.uniform(1.0, 2.0)  # an early start
                if rng.random() < 0.03:
                    volume *= 2  # deploy day
            if weekend:
                length, volume = rng.uniform(1, 3), volume / 4
            ip_pool = p.ips + ([p.vpn_ip] if p.vpn_ip else [])
            travel = self._travellers.get(p.user)
            if travel and day >= travel[0]:
                ip_pool = [f"10.{travel[1]}.77.{sum(p.user.encode()) % 200 + 2}"]
            if self.noise and rng.random() < 0.01:
                parts = p.ips[0].split(".")
                p.ips[0] = ".".join(parts[:3] + [str(rng.randrange(2, 250))])  # DHCP lease changed
            for _k in range(_poisson(rng, volume)):
                local = rng.uniform(start, start + length)
                ts = date + timedelta(hours=local - p.offset)
                r = rng.random()
                action = "read" if r < 0.7 else "list" if r < 0.82 else "write" if r < 0.93 else "history"
                events.append((ts, p.user, rng.choice(ip_pool) if rng.random() < 0.9 else ip_pool[0], action,
                               f"{p.team}/{rng.choice(('db', 'api', 'kafka', 'ldap'))}/{rng.choice(('password', 'token', 'keytab'))}",
                               rng.random() > 0.02, None))
            if self.noise and rng.random() < 0.005:  # fat fingers: a few failures in a minute
                ts = date + timedelta(hours=start + 1 - p.offset)
                for k in range(rng.randrange(3, 6)):
                    events.append((ts + timedelta(seconds=10 * k), p.user, p.ips[0], "unlock", "vault", False, None))
        events.extend(self._injected.get(day, []))
        events.sort(key=lambda e: e[0])
        return events

    def records(self) -> Iterator[dict]:
        """Records in time order, without chain fields; ``seq`` counts from 1."""
        seq = 0
        for day in range(self.days):
            for ts, user, ip, action, resource, success, lab in self._day_events(day):
                if ts >= self.end:
                    continue
                seq += 1
                stamp = _fmt(ts)
                if lab is not None:
                    lab.seqs.append(seq)
                    lab.start = lab.start or stamp
                    lab.end = stamp
                event = "authentication" if action == "unlock" else "secret_access"
                yield {"timestamp": stamp, "level": "info" if success else "warning", "event": event, "user": user, "action": action,
                       "resource": resource, "source_ip": ip, "host": "broker-1", "success": success, "seq": seq}


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, int(rng.gauss(lam, lam ** 0.5) + 0.5))
    import math

    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def write_log(path: Path, records, key: bytes | None = None, checkpoint_every: int = 0) -> int:
    """Write records as a real chained audit log (with ``audit.key`` and the head
    anchor next to it), as ``AuditLog.append`` would, but in one buffered pass."""
    from zerotrust_admin import fsutil
    from zerotrust_admin.audit.log import GENESIS, HASH_PREFIX, canonical
    from zerotrust_admin.crypto import hmac_sha256, random_key

    path = Path(path)
    fsutil.ensure_private_dir(path.parent)
    key_path = path.with_name("audit.key")
    if key is None:
        if key_path.exists():
            key = base64.b64decode(fsutil.read_private_file(key_path, what="audit key file").strip())
        else:
            key = random_key()
    if not key_path.exists():
        fsutil.write_private_file(key_path, base64.b64encode(key) + b"\n")
    prev, seq = GENESIS, 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
        for record in records:
            seq += 1
            rec = dict(record)
            rec["seq"] = seq
            rec["prev"] = prev
            rec["hash"] = prev = hmac_sha256(key, HASH_PREFIX + canonical(rec)).hex()
            fh.write(canonical(rec) + b"\n")
    if seq:  # the signed anchor and checkpoints, as the writer would have left them (docs/audit-format.md)
        from zerotrust_admin.audit import AuditLog
        from zerotrust_admin.audit.checkpoint import anchor_existing_log

        anchor_existing_log(AuditLog(path), every=checkpoint_every)
    return seq


def labels_json(labels: list[Label]) -> str:
    return json.dumps([lab.to_dict() for lab in labels], indent=1)

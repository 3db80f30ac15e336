"""Evidence collectors: read the live system, never change it.

Each collector returns a plain dict. A collector whose subsystem is missing
(an optional package, a backend not configured) returns
``{"available": False, "note": ...}`` so the control is reported as "not
evaluated", never as passing. The audit log is read in one streaming pass
(statistics and anomaly detection share it) plus the chain verification.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sqlite3
import stat
from collections import Counter
from fnmatch import fnmatchcase
from datetime import datetime, timedelta, timezone
from pathlib import Path

from zerotrust_admin.config.check import walk_config
from zerotrust_admin.errors import ZeroTrustError

REQUIRED_FIELDS = ("timestamp", "user", "action", "resource", "source_ip", "success")
REVIEW_EVENTS = {"anomaly_review"}
PARALLEL_VERIFY_BYTES = 8 << 20  # logs above this are verified in a forked child, beside the statistics pass


def _fmt(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse(ts) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(ts))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _age_days(created: str | None, now: datetime) -> float | None:
    moment = _parse(created) if created else None
    return round((now - moment).total_seconds() / 86400, 2) if moment else None


def file_mode(path: Path | None) -> dict:
    if path is None:
        return {"path": None, "exists": False}
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"path": str(path), "exists": False}
    except OSError as exc:
        return {"path": str(path), "exists": False, "error": exc.strerror}
    mode = stat.S_IMODE(st.st_mode)
    is_dir = stat.S_ISDIR(st.st_mode)
    private = (mode & 0o077) == 0
    return {"path": str(path), "exists": True, "mode": f"{mode:04o}", "symlink": stat.S_ISLNK(st.st_mode), "directory": is_dir,
            "private": private and not stat.S_ISLNK(st.st_mode), "owner_uid": st.st_uid}


def sha256_file(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


# --- configuration ------------------------------------------------------------
def collect_config(config) -> dict:
    from zerotrust_admin.config.check import _plaintext_secrets, _plaintext_transport, _tls_policy

    raw = config.raw or {}
    plaintext = [p.key for p in _plaintext_secrets(raw)]
    tls = config.section("tls")
    tls_problems = [p.message for p in _tls_policy(config)]
    transport = [p.message for p in _plaintext_transport(config)]
    canonical = json.dumps(config.redacted(), sort_keys=True, separators=(",", ":"), default=str).encode()
    env_secrets = sorted(v for v in config.env_applied if any(k in v.lower() for k in ("password", "secret", "key", "token", "pin")))
    return {
        "available": True,
        "path": str(config.path) if config.path else None,
        "provider": config.provider,
        "plaintext_secret_keys": plaintext,
        "secret_sources": {"env_overrides": env_secrets,
                           "file_refs": sorted(d for d, k, v in walk_config(raw) if k.endswith("_file")),
                           "vault_refs": sorted(d for d, k, v in walk_config(raw) if isinstance(v, str) and v.startswith("vault:"))},
        "tls": {"min_version": str(tls.get("min_version", "1.2")), "ciphers": tls.get("ciphers"), "verify": tls.get("verify", True),
                "problems": tls_problems, "plaintext_transport": transport},
        "config_sha256": hashlib.sha256(canonical).hexdigest(),
        "file_sha256": sha256_file(config.path) if config.path else None,
    }


# --- vault ---------------------------------------------------------------------
def collect_vault(config, now: datetime) -> dict:
    provider = config.provider
    if provider != "local":
        return {"available": True, "provider": provider, "external": True,
                "note": f"secrets are held in the external provider {provider!r}; its encryption at rest is the provider's"}
    path = config.vault_path
    if not path.exists():
        return {"available": False, "provider": "local", "note": f"no vault at {path} (run zerotrust-admin init)"}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            deks = [{"id": r[0], "created": r[1], "state": r[2], "master_key_id": r[3]}
                    for r in conn.execute("SELECT id, created, state, master_key_id FROM deks ORDER BY created").fetchall()]
            counts = conn.execute("SELECT COUNT(*), COALESCE(SUM(sensitive), 0) FROM secrets WHERE deleted_at IS NULL").fetchone()
            versions, malformed = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN length(sealed) <> size + 28 THEN 1 ELSE 0 END), 0) FROM versions").fetchone()
            unsealed = [f"{r[0]} v{r[1]}" for r in conn.execute("SELECT name, version FROM versions WHERE length(sealed) <> size + 28 ORDER BY name, version LIMIT 5")]
            per_dek = dict(conn.execute("SELECT dek_id, COUNT(*) FROM versions GROUP BY dek_id").fetchall())
            for d, (length,) in zip(deks, (conn.execute("SELECT length(wrapped) FROM deks WHERE id = ?", (d["id"],)).fetchone() for d in deks)):
                d["wrapped_len"] = length
            names = conn.execute("SELECT name, sensitive FROM secrets WHERE deleted_at IS NULL ORDER BY name").fetchall()
            dek_cols = {r[1] for r in conn.execute("PRAGMA table_info(deks)")}
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            session_keys = []
            if "session_keys" in tables:
                session_keys = [{"id": r[0], "created": r[1], "state": r[2], "wrapped_len": r[3]}
                                for r in conn.execute("SELECT id, created, state, length(wrapped) FROM session_keys ORDER BY created")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return {"available": False, "provider": "local", "note": f"the vault could not be read ({exc})"}
    master_created = meta.get("master_created") or meta.get("created")
    # The figures above were read without any key, so anyone who can write
    # vault.db chooses them (threat model V5). When this process can open the
    # vault, the key times and states come from the authenticated records
    # instead, and a vault that fails its integrity checks is no evidence at all.
    auth = _authenticated_key_records(config, path, meta)
    if auth.get("integrity_error"):
        return {"available": False, "integrity_failed": True, "provider": "local", "path": str(path), "authenticated": False,
                "note": f"the vault failed its integrity check: {auth['integrity_error']}"}
    if auth.get("authenticated"):
        wrapped = {d["id"]: d.get("wrapped_len") for d in deks}
        deks = [{"id": d.id, "created": d.created, "state": d.state, "master_key_id": d.master_key_id, "wrapped_len": wrapped.get(d.id)} for d in auth["deks"]]
        swrapped = {k["id"]: k.get("wrapped_len") for k in session_keys}
        session_keys = [{"id": k.id, "created": k.created, "state": k.state, "wrapped_len": swrapped.get(k.id)} for k in auth["session_keys"]]
        master_created = auth["master_created"] or master_created
        meta = {**meta, "created": auth.get("created") or meta.get("created")}  # the authenticated creation time
    for d in deks:
        d["age_days"] = _age_days(d["created"], now)
    for k in session_keys:
        k["age_days"] = _age_days(k["created"], now)
    return {
        "available": True, "provider": "local", "external": False, "path": str(path),
        "authenticated": bool(auth.get("authenticated")), "authentication_note": auth.get("note", ""),
        "format": meta.get("format"), "algorithm": _aead_self_test()["result"],
        "aead_self_test": _aead_self_test(), "key_generation": _keygen_self_test(),
        "kcv": bool(meta.get("kcv")), "dek_mac": "mac" in dek_cols, "created": meta.get("created"),
        "secret_names": [n for n, _ in names], "sensitive_names": [n for n, sens in names if sens],
        "unsealed_names": unsealed, "versions_per_dek": per_dek,
        "master_source": meta.get("master_source"), "master_key_id": meta.get("master_key_id"),
        "master_created": master_created, "master_age_days": _age_days(master_created, now),
        "deks": deks, "active_dek": next((d for d in reversed(deks) if d["state"] == "active"), None),
        "deks_wrapped_by_current_master": sum(1 for d in deks if d["master_key_id"] == meta.get("master_key_id")),
        "session_keys": session_keys,
        "secrets": counts[0], "sensitive_secrets": counts[1], "versions": versions,
        "versions_not_sealed_shape": malformed,
        "vault_sha256": sha256_file(path),
    }


def _authenticated_key_records(config, path, meta: dict) -> dict:
    """Key records read through the vault's own checks (schema, MACs, the
    commitment, the audit floor) when this process holds the master key; never
    prompts. A format-1 vault is not upgraded by a report."""
    import os

    from zerotrust_admin.errors import IntegrityError, ZeroTrustError

    if meta.get("format") == "1":
        return {"authenticated": False, "note": "format-1 vault: key times are not authenticated until a vault command upgrades it"}
    try:
        from zerotrust_admin.audit import open_audit_log
        from zerotrust_admin.keys import KeySourceContext, open_configured_source
        from zerotrust_admin.vault import Vault

        kctx = KeySourceContext(config=config.data, home=config.home, ask_passphrase=None, environ=dict(os.environ))
        with Vault.open(path, lambda kind, params: open_configured_source(kctx, kind, params), audit=open_audit_log(config, sinks=False)) as vault:
            return {"authenticated": True, "deks": vault.list_deks(), "session_keys": vault.session_keys(),
                    "master_created": vault.meta.get("master_created"), "created": vault.meta.get("created"), "note": "key times and states read through the vault's MACs and commitment"}
    except IntegrityError as exc:
        return {"integrity_error": exc.message if hasattr(exc, "message") else str(exc)}
    except ZeroTrustError as exc:
        return {"authenticated": False, "note": f"key times read without the master key, not authenticated ({type(exc).__name__})"}


def _aead_self_test() -> dict:
    """A known answer for the vault's AEAD (AES-256-GCM, McGrew-Viega test case 14:
    zero key, zero nonce, 16 zero bytes): the algorithm is observed, not asserted."""
    from zerotrust_admin.crypto import aead

    expected = "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919"
    try:
        got = aead.seal(bytes(32), bytes(16), b"", nonce=bytes(12))[12:].hex()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return {"ok": False, "result": f"AEAD self-test failed ({type(exc).__name__})"}
    ok = got == expected and aead.KEY_SIZE == 32 and aead.NONCE_SIZE == 12 and aead.TAG_SIZE == 16
    return {"ok": ok, "result": ("AES-256-GCM (256-bit key, 96-bit nonce, 128-bit tag): known-answer test passed" if ok
                                 else "the vault cipher does not produce the AES-256-GCM known answer")}


def _keygen_self_test() -> dict:
    from zerotrust_admin.crypto import aead

    sample = [aead.random_key() for _ in range(16)]
    return {"ok": all(len(k) == 32 for k in sample) and len(set(sample)) == 16, "source": "crypto.aead.random_key (os.urandom, the OS CSPRNG)",
            "sample_bytes": 32 * len(sample), "distinct": len(set(sample))}


# --- files -----------------------------------------------------------------------
def collect_files(config) -> dict:
    home = config.home
    files = {"home": file_mode(home), "vault": file_mode(config.vault_path), "audit_log": file_mode(config.audit_path),
             "audit_key": file_mode(config.audit_path.with_name("audit.key")),
             "audit_head": file_mode(config.audit_path.with_name(config.audit_path.name + ".head")),
             "config": file_mode(config.path) if config.path else {"path": None, "exists": False, "note": "no config file: defaults apply"}}
    key_file = config.get("encryption.key_file")
    files["master_key"] = file_mode(Path(key_file).expanduser() if key_file else home / "master.key")
    for dotted, key, value in walk_config(config.data):
        if key.endswith("_file") and isinstance(value, str) and value:
            files[dotted] = file_mode(Path(value).expanduser())
    present = {k: v for k, v in files.items() if v.get("exists")}
    loose = sorted(k for k, v in present.items() if not v.get("private") and not (k == "audit_log" and v.get("mode") in ("0640",)))
    return {"available": True, "files": files, "loose": loose}


# --- audit log: one streaming pass -----------------------------------------------------
class AuditStats:
    """One streaming pass over the log: totals, and the period replay (event
    classes with their record ranges, review/backup/evaluation times, MFA
    coverage of sensitive reads, scope declarations, attestations and
    exceptions, master-key rotations, clock anomalies)."""

    def __init__(self, period_start: datetime, now: datetime, sensitive: set | None = None, mfa_globs=()):
        self.period_start = period_start
        self.now = now
        self.period_start_s = _fmt(period_start)
        self.now_s = _fmt(now)
        self.late_s = _fmt(now + timedelta(minutes=5))[:19]
        self.total = 0
        self.in_period = 0
        self.unreadable = 0
        self.first_seq = None
        self.first_ts = None
        self.last_ts = None
        self.last_seq = None
        self.missing_fields = Counter()
        self.records_missing_fields = 0
        self.missing_field_seqs: list = []
        self.events = Counter()
        self.failures_in_period = 0
        self.per_day = Counter()
        self.last = {}  # what -> (timestamp, seq, success)
        self.counts = Counter()
        self.classes: dict = {}
        self.period_events: dict = {k: [] for k in ("anomaly_review", "backup", "restore", "compliance_report")}
        self.master_rotations: list = []
        self.prev_ts = ""
        self.prev_t19 = ""
        self.now_t19 = self.now_s[:19]
        self.start_t19 = self.period_start_s[:19]
        self.reads = None
        self.config_digests: list = []
        self.backwards = 0
        self.first_backwards_seq = None
        self.after_now = 0
        self.first_after_now_seq = None
        self.sensitive = sensitive or set()
        self.mfa_globs = tuple(mfa_globs or ())
        self.mfa_ok: dict = {}
        self.sensitive_reads = 0
        self.verified_reads = 0
        self.first_unverified_seq = None
        self.scope: dict = {}
        self.attestations: list = []
        self.exceptions: list = []
        self.rotations: dict = {}  # managed secret -> {rotation id: [timestamp, step]} (finished, else retired)
        self.rotation_failures: list = []
        self.rotation_failure_count = 0

    def feed_unreadable(self) -> None:
        self.unreadable += 1

    def _cls(self, name: str, seq) -> None:
        c = self.classes.get(name)
        if c is None:
            self.classes[name] = {"count": 1, "first_seq": seq, "last_seq": seq}
        else:
            c["count"] += 1
            c["last_seq"] = seq

    def feed(self, r: dict) -> None:
        self.total += 1
        ts = r.get("timestamp")
        seq = r.get("seq")
        if self.first_seq is None:
            self.first_seq = seq
            self.first_ts = ts
        self.last_ts = ts
        self.last_seq = seq
        success = r.get("success")
        # fast path: the writer always sets all six fields; only a record that lacks one is examined field by field
        if not (ts and r.get("user") and r.get("action") and r.get("resource") and r.get("source_ip") and success.__class__ is bool):
            missing = [f for f in REQUIRED_FIELDS if r.get(f) in (None, "")]
            if not isinstance(success, bool) and "success" not in missing:
                missing.append("success")
            self.records_missing_fields += 1
            self.missing_fields.update(missing)
            if len(self.missing_field_seqs) < 5:
                self.missing_field_seqs.append(seq)
        if not isinstance(ts, str):
            return
        t19 = ts[:19]
        if t19 < self.prev_t19 and _later_by(self.prev_ts, ts, 1.0):
            self.backwards += 1
            if self.first_backwards_seq is None:
                self.first_backwards_seq = seq
        self.prev_ts, self.prev_t19 = ts, t19
        if t19 > self.now_t19:
            if t19 > self.late_s:  # beyond the clock tolerance: a finding (clock skew or a backdated report)
                self.after_now += 1
                if self.first_after_now_seq is None:
                    self.first_after_now_seq = seq
            return  # evidence from after the report time is not used
        event, action = r.get("event"), r.get("action")
        success = success is True
        details = r.get("details") or {}
        kind = None if event == "secret_access" and action != "rotate" else _classify(event, action, details)
        if kind:
            self.counts[kind + (":ok" if success else ":failed")] += 1
            if success or kind not in self.last:
                self.last[kind] = {"timestamp": t19 + "Z", "seq": seq, "success": success}
            if success:
                self.last[kind + ":ok"] = {"timestamp": t19 + "Z", "seq": seq}
            if kind == "key_rotation" and success and r.get("resource") == "master-key":
                self.master_rotations.append(t19 + "Z")
            elif kind in ("compliance_scope", "compliance_attestation", "compliance_exception") and success:
                self._declaration(kind, r, t19 + "Z", details)
            elif kind == "secret_rotation":
                self._secret_rotation(r, t19, seq, success, details)
        if event == "mfa" and action == "verify" and success:
            self.mfa_ok[(r.get("user"), r.get("resource"))] = t19
        if t19 >= self.start_t19:
            self.in_period += 1
            self.events[event] += 1
            self.per_day[ts[:10]] += 1
            if event == "secret_access" and action == "read" and success:
                # the common record: a successful read, counted inline
                if self.reads is None:
                    self.reads = {"count": 0, "first_seq": seq, "last_seq": seq}
                    self.classes["reads"] = self.reads
                self.reads["count"] += 1
                self.reads["last_seq"] = seq
                if self.sensitive or self.mfa_globs:
                    self._sensitive_read(r, seq, t19)
                return
            if not success:
                self.failures_in_period += 1
            self._classify_period(r, event, action, success, kind, seq, t19, details)

    def _sensitive_read(self, r, seq, t19) -> None:
        resource = r.get("resource")
        if not self._is_sensitive(resource):
            return
        self.sensitive_reads += 1
        ok = self.mfa_ok.get((r.get("user"), resource))
        if ok is not None and ok <= t19 and not _later_by(t19, ok, 300.0):
            self.verified_reads += 1
        elif self.first_unverified_seq is None:
            self.first_unverified_seq = seq

    def _classify_period(self, r, event, action, success, kind, seq, t19, details) -> None:
        if kind in self.period_events and success:
            self.period_events[kind].append(t19 + "Z")
            if kind == "compliance_report" and details.get("config_sha256"):
                self.config_digests.append((t19 + "Z", seq, details["config_sha256"]))
        if not success:
            self._cls("failures", seq)
            if event == "access_denied":
                self._cls("denied", seq)
            if event == "mfa" and details.get("reason") == "replayed":
                self._cls("mfa_replays", seq)
        if event == "secret_access":
            resource = r.get("resource")
            if action == "read":
                self._cls("reads", seq)  # a failed read (successful ones are counted in feed)
                if self.reads is None:
                    self.reads = self.classes["reads"]
            elif action in ("write", "delete", "create", "restore_version", "rotate") and success:
                self._cls("credentials", seq)
                if action in ("delete",) or details.get("version") == 1:
                    self._cls("objects", seq)
        elif kind in ("key_rotation",) and success:
            self._cls("credentials", seq)
            self._cls("admin", seq)
            if action == "create":
                self._cls("objects", seq)
                self._cls("lifecycle", seq)
        elif event == "mfa" and action == "enroll" and success:
            self._cls("credentials", seq)
            self._cls("admin", seq)
        elif kind in ("backup", "restore", "revocation", "compliance_report", "anomaly_review", "notify_test",
                      "compliance_scope", "compliance_attestation", "compliance_exception") and success:
            self._cls("admin", seq)
        elif kind == "sink_failure" or event == "audit_recovery":
            self._cls("lifecycle", seq)
            self._cls("sink_failures", seq)
        if event == "lockout" or (isinstance(action, str) and action.startswith("authenticate:") and r.get("level") in ("warning", "error") and "locked" in str(details)):
            self._cls("lockouts", seq)
        if event == "notification" and isinstance(details, dict) and "breach" in str(details.get("about", "")):
            self._cls("breaches", seq)

    def _secret_rotation(self, r, t19, seq, success, details) -> None:
        """rotate-secrets' step records: when each managed secret's rotations took
        effect (its ``finished`` step; ``retired`` for one whose ``finished``
        record is not in the log), and the failed steps of the period."""
        step = details.get("step") if isinstance(details, dict) else None
        resource = r.get("resource")
        if success:
            if step in ("finished", "retired") and isinstance(resource, str):
                done = self.rotations.setdefault(resource, {})
                rid = str(details.get("rotation") or f"seq{seq}")
                if step == "finished" or rid not in done:
                    done[rid] = [t19 + "Z", step]
        elif t19 >= self.start_t19 and step != "lock":  # a busy lock is another run at work, not a failed rotation
            self.rotation_failure_count += 1
            if len(self.rotation_failures) < 50:
                self.rotation_failures.append({"secret": resource, "step": step, "timestamp": t19 + "Z", "seq": seq,
                                               "kind": details.get("kind") if isinstance(details, dict) else None,
                                               "error": details.get("error") if isinstance(details, dict) else None})

    def _is_sensitive(self, name) -> bool:
        if name in self.sensitive:
            return True
        return bool(self.mfa_globs) and any(fnmatchcase(str(name), g) for g in self.mfa_globs)

    def _declaration(self, kind, r, ts, details) -> None:
        who = {"user": r.get("user"), "timestamp": ts, "seq": r.get("seq")}
        if kind == "compliance_scope":
            for name, value in (details.get("scope") or {}).items():
                self.scope[name] = {**who, "in_scope": bool(value), "note": details.get("note")}
        elif kind == "compliance_attestation":
            self.attestations.append({**who, "requirement": details.get("requirement"), "standard": details.get("standard"),
                                      "document": details.get("document"), "sha256": details.get("document_sha256"),
                                      "reviewer": details.get("reviewer"), "expires": details.get("expires")})
        else:
            self.exceptions.append({**who, "requirement": details.get("requirement"), "standard": details.get("standard"),
                                    "owner": details.get("owner"), "reason": details.get("reason"), "expires": details.get("expires")})

    def to_dict(self) -> dict:
        days = []
        day = self.period_start.date()
        while day <= self.now.date():
            key = day.isoformat()
            days.append([key, self.per_day.get(key, 0)])
            day += timedelta(days=1)
        return {
            "records": self.total, "records_in_period": self.in_period, "unreadable_lines": self.unreadable,
            "first_seq": self.first_seq, "last_seq": self.last_seq, "oldest_record": self.first_ts, "newest_record": self.last_ts,
            "oldest_age_days": _age_days(self.first_ts, self.now) if self.first_ts else None,
            "records_missing_fields": self.records_missing_fields, "missing_fields": dict(sorted(self.missing_fields.items())),
            "missing_field_seqs": self.missing_field_seqs,
            "events_in_period": dict(sorted(self.events.items())), "failures_in_period": self.failures_in_period,
            "per_day": days, "last": dict(sorted(self.last.items())), "counts": dict(sorted(self.counts.items())),
            "classes": dict(sorted(self.classes.items())), "period_events": self.period_events, "master_rotations": self.master_rotations,
            "timestamps_backwards": self.backwards, "first_backwards_seq": self.first_backwards_seq,
            "records_after_now": self.after_now, "first_after_now_seq": self.first_after_now_seq,
            "mfa_coverage": {"sensitive_reads": self.sensitive_reads, "verified": self.verified_reads,
                             "percent": round(100.0 * self.verified_reads / self.sensitive_reads, 1) if self.sensitive_reads else None,
                             "first_unverified_seq": self.first_unverified_seq,
                             "basis": "reads of secrets marked sensitive now or matching security.mfa.required_for, each preceded within 5 min by a successful MFA verification of the same user for the same secret"},
            "scope": dict(sorted(self.scope.items())), "attestations": self.attestations, "exceptions": self.exceptions,
            "config_changes": _digest_changes(self.config_digests), "config_digests_recorded": len(self.config_digests),
            "secret_rotations": {name: sorted(t for t, _step in done.values()) for name, done in sorted(self.rotations.items())},
            "secret_rotation_failures": self.rotation_failures, "secret_rotation_failures_count": self.rotation_failure_count,
        }


def _digest_changes(runs: list) -> list:
    """Consecutive report runs whose configuration digest differs."""
    out = []
    for (t0, s0, d0), (t1, s1, d1) in zip(runs, runs[1:]):
        if d0 != d1:
            out.append({"between": [t0, t1], "records": [s0, s1], "from": d0[:16], "to": d1[:16]})
    return out


def _later_by(a: str, b: str, seconds: float) -> bool:
    """Whether timestamp ``a`` is more than ``seconds`` after ``b`` (ISO strings)."""
    pa, pb = _parse(a[:26].rstrip("Z")), _parse(b[:26].rstrip("Z"))
    if pa is None or pb is None:
        return False
    return (pa - pb).total_seconds() > seconds


def _classify(event, action, details) -> str | None:
    if event in REVIEW_EVENTS:
        return "anomaly_review"
    if event == "secret_rotation":  # rotate-secrets: the secrets themselves, never the tool's own keys
        return "secret_rotation"
    if event == "key_rotation" or action == "rotate":
        return "key_rotation"
    if event in ("session_revocation", "credential_revocation") or action == "revoke":
        return "revocation"
    if action == "restore" or event in ("restore", "vault_restore"):
        return "restore"
    if action == "backup" or event in ("backup", "vault_backup"):
        return "backup"
    if event == "notify_test" or (event == "notification" and isinstance(details, dict) and details.get("about") == "notify_test"):
        return "notify_test"
    if event == "notification":
        return "notification"
    if event == "audit_sink_failure":
        return "sink_failure"
    if event == "access_denied":
        return "access_denied"
    if event == "compliance_report":  # a logged read of the whole audit trail (PCI DSS 10.2.1.3)
        return "compliance_report"
    if event in ("compliance_scope", "compliance_attestation", "compliance_exception"):
        return event
    return None


def collect_audit(config, now: datetime, period_start: datetime, anomaly_since: datetime | None = None, *,
                  sensitive: set | None = None, mfa_globs=()) -> tuple[dict, dict]:
    """(audit evidence, anomaly evidence) from the verification and one pass."""
    from zerotrust_admin.anomaly import engine_from_config
    from zerotrust_admin.audit import open_audit_log

    parse_line = line_parser()

    log = open_audit_log(config, sinks=False)  # the configured signing key, wherever audit.path is
    out: dict = {"available": True, "path": str(log.path), "exists": log.path.exists(), "sinks": config.get("audit.sinks") or ["file"],
                 "on_sink_failure": config.get("audit.on_sink_failure") or "refuse", "retention_days_configured": config.get("audit.retention_days")}
    head = None
    try:
        head_path = log.head_path
        if head_path.exists():
            head = json.loads(head_path.read_bytes())
    except (OSError, ValueError):
        head = None
    out["chain_head"] = head
    stats = AuditStats(period_start, now, sensitive, mfa_globs)
    engine = engine_from_config(config, anomaly_since or period_start, now)
    # A large log is read by two processes on two cores: a forked child checks
    # the chain and makes the statistics/period-replay pass, while this process
    # runs the anomaly detectors; a small one is read once, here.
    pending = _start_child(log, stats)
    if pending is None:
        out["verify"] = _verify(log)
        error = _pass(log, parse_line, stats, engine)
        result = {"stats": stats.to_dict(), "read_error": error}
    else:
        _pass(log, parse_line, None, engine)
        result = pending()
    if result.get("read_error"):
        out["read_error"] = result["read_error"]
    out.setdefault("verify", result.get("verify"))
    out.update(result["stats"])
    report = engine.finish()
    anomalies = {"available": True, "enabled": _anomaly_enabled(config), **report.to_dict()}
    anomalies["findings"] = anomalies["findings"][:200]
    return out, anomalies


def _verify(log) -> dict:
    try:
        return log.verify().to_dict()
    except ZeroTrustError as exc:
        return {"ok": False, "records": None, "problem": exc.message, "first_bad_seq": None, "first_bad_line": None, "warnings": []}
    except OSError as exc:
        return {"ok": False, "records": None, "problem": f"cannot read the audit log: {exc.strerror}", "first_bad_seq": None,
                "first_bad_line": None, "warnings": []}


def line_parser():
    """The JSON parser for the passes: orjson when it is installed (about
    twice as fast; it comes with the OSCAL validator), else the audit
    strict parser below. Both raise ValueError on anything but one JSON
    value, so an unreadable line is counted the same way."""
    try:
        import orjson
    except ImportError:
        return strict_parse
    return orjson.loads


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


_STRICT_DECODE = json.JSONDecoder(parse_constant=_no_constant).raw_decode


def strict_parse(raw: bytes):
    """One log line -> object, strict RFC 8259 as orjson is (NaN and Infinity
    are not JSON): the same lines are unreadable whichever parser runs."""
    text = raw.decode("utf-8").rstrip("\r\n")
    obj, end = _STRICT_DECODE(text)
    if end != len(text):
        raise ValueError("trailing data")
    return obj


def _pass(log, parse_line, stats, engine) -> str | None:
    """One read of the log feeding the statistics and/or the detectors; the read error, if any."""
    feed_stats = stats.feed if stats is not None else None
    feed_engine = engine.feed if engine is not None else None
    try:
        for _number, raw in log.lines():
            try:
                record = parse_line(raw)
            except ValueError:
                if stats is not None:
                    stats.feed_unreadable()
                continue
            if not isinstance(record, dict):
                if stats is not None:
                    stats.feed_unreadable()
                continue
            if feed_stats is not None:
                feed_stats(record)
            if feed_engine is not None:
                feed_engine(record)
    except ZeroTrustError as exc:
        return exc.message
    except OSError as exc:
        return exc.strerror
    return None


def _start_child(log, stats):
    """For a large log, fork a child that verifies the chain and makes the
    statistics pass; returns a function that waits for its result, or None
    (small log, no fork): then the caller does both itself."""
    try:
        large = log.path.stat().st_size > PARALLEL_VERIFY_BYTES
    except OSError:
        large = False
    if not large or not hasattr(os, "fork"):
        return None
    import multiprocessing

    try:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(log, stats, child), daemon=True)
        proc.start()
        child.close()
    except (OSError, ValueError):
        return None

    def wait() -> dict:
        try:
            result = parent.recv()
        except EOFError:
            result = None
        proc.join()
        parent.close()
        if not isinstance(result, dict):  # the child died: do its work here
            error = _pass(log, line_parser(), stats, None)
            result = {"verify": _verify(log), "stats": stats.to_dict(), "read_error": error}
        return result

    return wait


def _child(log, stats, conn) -> None:
    try:
        verify = _verify(log)
        error = _pass(log, line_parser(), stats, None)
        conn.send({"verify": verify, "stats": stats.to_dict(), "read_error": error})
    finally:
        conn.close()


def _anomaly_enabled(config) -> bool:
    section = config.get("security.anomaly_detection")
    if isinstance(section, dict) and section.get("enabled") is False:
        return False
    return True


# --- access, MFA, AWS, sessions, notifications ------------------------------------------
def collect_secret_rotation(config) -> dict:
    """The managed secrets (``secret_rotation:``) and their cadence; the
    rotations themselves are replayed from the audit log (``audit`` evidence)."""
    from zerotrust_admin.errors import ZeroTrustError
    from zerotrust_admin.secret_rotation.config import load_managed

    try:
        entries = load_managed(config)
    except ZeroTrustError as exc:
        return {"available": False, "note": f"secret_rotation configuration: {exc.message}", "managed": []}
    return {"available": True, "managed": [{"secret": e.secret, "kind": e.kind, "every_seconds": e.every, "grace_seconds": e.grace}
                                           for e in entries]}


def collect_access(config) -> dict:
    raw = config.get("access.policies") or []
    try:
        from zerotrust_admin.access import load_policies
    except ImportError:
        return {"available": False, "policies": len(raw), "note": "access-policy enforcement is not installed"}
    try:
        rules = load_policies(config)
    except ZeroTrustError as exc:
        return {"available": True, "policies": len(raw), "error": exc.message, "wildcard_grants": [], "rules": []}
    wild = []
    for rule in rules:
        d = rule.to_dict()
        broad_principal = any(p in ("*", "*@*") for p in d["principals"])
        broad_secret = any(s in ("*", "**", "/*") for s in d["secrets"])
        broad_action = any(a in ("*", "admin") for a in d["actions"]) or {"write", "delete"} <= set(d["actions"])
        if d["effect"] == "allow" and broad_principal and broad_secret and broad_action:
            wild.append(rule.describe())
    privileged = ("*", "rotate", "restore", "backup", "mfa", "revoke", "delete", "notify", "report")
    holders = sorted({p for r in rules if r.effect == "allow" and any(a in privileged for a in r.actions)
                      for p in r.principals if not any(c in p for c in "*?[")})
    return {"available": True, "policies": len(rules), "default": "deny" if rules else "no policies: every local operator with file access may do everything",
            "wildcard_grants": wild, "rules": [r.describe() for r in rules[:50]], "privileged_holders": holders}


def collect_mfa(config, vault: dict) -> dict:
    try:
        from zerotrust_admin.mfa import MfaPolicy
    except ImportError:
        return {"available": False, "note": "MFA is not installed in this build"}
    try:
        policy = MfaPolicy.from_config(config)
    except ZeroTrustError as exc:
        return {"available": True, "error": exc.message}
    return {"available": True, "enabled": policy.enabled, "required_for": list(policy.required_for), "factor": "TOTP (RFC 6238), single use",
            "sensitive_secrets": vault.get("sensitive_secrets"), "sensitive_always_require_mfa": True}


def collect_aws(config) -> dict:
    aws = config.section("aws")
    roles = aws.get("roles") or []
    role_config = aws.get("role_config") or {}
    import importlib.util

    module = any(importlib.util.find_spec(f"zerotrust_admin.{name}") is not None for name in ("credentials", "aws", "sts"))
    role_ids = []
    for role in roles:
        arn = role if isinstance(role, str) else (role.get("arn") if isinstance(role, dict) else None)
        if not arn:
            continue
        account = arn.split(":")[4] if arn.count(":") >= 5 else ""
        external = bool(aws.get("external_id")) or (isinstance(role, dict) and bool(role.get("external_id"))) or \
            (isinstance(role_config, dict) and isinstance(role_config.get(arn), dict) and bool(role_config[arn].get("external_id")))
        role_ids.append({"arn": arn, "account": account, "external_id": external})
    allowed = [str(a) for a in (aws.get("allowed_accounts") or [])]
    return {"available": True, "issuer_installed": module, "configured": bool(roles), "duration_seconds": aws.get("duration_seconds", 3600),
            "roles": role_ids, "allowed_accounts": allowed,
            "roles_without_external_id": [r["arn"] for r in role_ids if not r["external_id"]],
            "roles_outside_allow_list": [r["arn"] for r in role_ids if allowed and r["account"] not in allowed]}


def collect_sessions(config) -> dict:
    try:
        from zerotrust_admin import sessions
    except ImportError:
        return {"available": False, "note": "session store not installed in this build"}
    try:
        backend = sessions.backend_name(config)
        max_ttl = sessions.max_ttl_seconds(config)
    except ZeroTrustError as exc:
        return {"available": True, "error": exc.message}
    return {"available": True, "backend": backend, "max_ttl_hours": round(max_ttl / 3600, 2), "revocation": "revoke-sessions / revoke-credentials"}


def collect_notify(config) -> dict:
    try:
        from zerotrust_admin import notify
    except ImportError:
        return {"available": False, "note": "breach notifications are not installed in this build"}
    try:
        specs = notify.channel_specs(config)
        on = notify.enabled(config)
    except ZeroTrustError as exc:
        return {"available": True, "enabled": False, "channels": [], "error": exc.message}
    return {"available": True, "enabled": on, "channels": [f"{name} ({kind})" for name, kind, _ in specs]}


def collect_memory(config) -> dict:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    except (ValueError, OSError):
        soft = hard = None
    dumpable = None
    try:
        import ctypes

        PR_GET_DUMPABLE = 3
        dumpable = int(ctypes.CDLL(None, use_errno=True).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    except (OSError, AttributeError):
        pass
    swap_devices = []
    try:
        with open("/proc/swaps") as fh:
            swap_devices = [line.split()[0] for line in fh.read().splitlines()[1:] if line.strip()]
    except OSError:
        pass
    try:
        memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    except (ValueError, OSError):
        memlock = None
    try:
        from zerotrust_admin import secret as secret_mod

        wipe = hasattr(secret_mod.Secret, "wipe")
        mlock = any(hasattr(secret_mod, n) for n in ("mlock", "_mlock", "lock_memory")) or "mlock" in (secret_mod.__doc__ or "").lower()
    except ImportError:
        wipe, mlock = False, False
    return {"available": True, "core_limit": soft, "dumpable": dumpable, "swap_devices": swap_devices,
            "memlock_limit": None if memlock in (None, resource.RLIM_INFINITY) else memlock, "memlock_unlimited": memlock == resource.RLIM_INFINITY,
            "secret_wipe": wipe, "secret_mlock": mlock}


def collect_lockout(config) -> dict:
    try:
        from zerotrust_admin.lockout import LockoutPolicy
    except ImportError:
        return {"available": False, "note": "lockout is not installed in this build"}
    try:
        p = LockoutPolicy.from_config(config)
    except ZeroTrustError as exc:
        return {"available": True, "error": exc.message}
    return {"available": True, "enabled": p.enabled, "max_failures": p.max_failures, "window_seconds": p.window_seconds,
            "base_delay_seconds": p.base_delay_seconds, "max_delay_seconds": p.max_delay_seconds}


def collect_fips() -> dict:
    import ssl

    try:
        kernel = Path("/proc/sys/crypto/fips_enabled").read_text().strip()
    except OSError:
        kernel = "not available"
    return {"available": True, "kernel_fips": kernel, "openssl": ssl.OPENSSL_VERSION, "module_certificate": None}


TIME_STATES = {0: "TIME_OK", 1: "TIME_INS", 2: "TIME_DEL", 3: "TIME_OOP", 4: "TIME_WAIT", 5: "TIME_ERROR"}


def collect_clock() -> dict:
    """The kernel's clock discipline state (adjtimex with modes 0 only reads)."""
    try:
        import ctypes

        buf = ctypes.create_string_buffer(512)
        state = int(ctypes.CDLL(None, use_errno=True).adjtimex(buf))
    except (OSError, AttributeError):
        return {"available": False, "synchronized": None}
    if state < 0:
        return {"available": False, "synchronized": None}
    return {"available": True, "state": TIME_STATES.get(state, str(state)), "synchronized": state != 5}


MEMORY_PROBE = r"""
import json, os, resource, sys
from zerotrust_admin.secret import Secret
s = Secret(os.urandom(32))
def vmlck():
    for line in open("/proc/self/status"):
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return None
locked = bool(getattr(s, "_locked", False))
kb = vmlck()
try:
    import ctypes
    dumpable = int(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))
except Exception:
    dumpable = None
buf = s._buf
s.wipe()
print(json.dumps({"locked": locked, "vmlck_kb": kb, "core_limit": resource.getrlimit(resource.RLIMIT_CORE)[0],
                  "dumpable": dumpable, "wiped": not any(buf)}))
"""


def probe_memory() -> dict:
    """mlock, core limit, dumpable flag and wiping observed in a child process
    that holds a (random, throwaway) secret, as every command does."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "ZEROTRUST_NO_MLOCK")}
    try:
        res = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, timeout=30, env=env)
        out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}"}
    out["summary"] = (f"locked in RAM: {out['locked']} (VmLck {out['vmlck_kb']} kB), RLIMIT_CORE {out['core_limit']}, "
                      f"dumpable {out['dumpable']}, buffer zeroed on wipe: {out['wiped']}")
    return out


def collect_all(config, now: datetime, period_start: datetime) -> dict:
    vault = collect_vault(config, now)
    mfa = collect_mfa(config, vault)
    # anomalies: the last 7 days of the period against the baseline before them, as ``audit anomalies`` does
    audit, anomalies = collect_audit(config, now, period_start, max(period_start, now - timedelta(days=7)),
                                     sensitive=set(vault.get("sensitive_names") or ()), mfa_globs=mfa.get("required_for") or ())
    memory = collect_memory(config)
    memory["probe"] = probe_memory()
    return {
        "config": collect_config(config),
        "vault": vault,
        "files": collect_files(config),
        "audit": audit,
        "anomalies": anomalies,
        "access": collect_access(config),
        "secret_rotation": collect_secret_rotation(config),
        "mfa": mfa,
        "lockout": collect_lockout(config),
        "fips": collect_fips(),
        "clock": collect_clock(),
        "aws": collect_aws(config),
        "sessions": collect_sessions(config),
        "notify": collect_notify(config),
        "memory": memory,
    }

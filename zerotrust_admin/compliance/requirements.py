"""One assertion per requirement (Prowler's model: framework -> section ->
requirement -> the checks that decide it).

A standard's data file (standards/<id>.json) lists its sections and, in each,
its requirements; a requirement names the checks that decide it (``checks``),
the C1-C13 controls it belongs to (for the summary matrix only), an optional
``scope`` (cardholder_data, phi, personal_data, availability) and ``params``
(cadences, thresholds quoted from the standard). Each check below reads the
collected evidence and returns a :class:`Finding` that names the resource it
judged (which key, which rule, which record range), never a control's
summary. A process or document requirement uses the ``manual`` check: MANUAL
until an attestation is recorded (``compliance attest``), WARNING once that
attestation has expired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

CLOCK_TOLERANCE = timedelta(minutes=5)  # records and keys this much after the report time are a finding
STATUS_RANK = {"fail": 5, "warning": 4, "not_evaluated": 3, "manual": 2, "pass": 1, "not_applicable": 0}

SCOPES = {"cardholder_data": "cardholder data (PAN) stored in the vault", "phi": "electronic protected health information",
          "personal_data": "personal data", "availability": "availability (the Availability criteria)"}


@dataclass
class Finding:
    status: str
    text: str  # one line naming the resource judged
    evidence: list[str] = field(default_factory=list)  # further lines, each its own fact
    remediation: str = ""
    check: str = ""

    def to_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "finding": self.text, "evidence": self.evidence, "remediation": self.remediation}



def _vault_gate(v: dict, external: str) -> "Finding | None":
    """The verdict when the vault's own records cannot decide a key requirement:
    tampered (fail), absent (not evaluated), or an external provider's keys
    (manual, ``external`` + the provider's name); None when they can."""
    if v.get("integrity_failed"):
        return _vault_integrity_failed(v)
    if not v.get("available") or v.get("external"):
        return Finding("not_evaluated" if not v.get("available") else "manual", v.get("note") or f"{external} {v.get('provider')}")
    return None


def _vault_integrity_failed(v: dict) -> "Finding":
    """A vault that fails its own integrity checks (threat model V2-V5) is a
    failed requirement, not a missing one: its records cannot be evidence."""
    return Finding("fail", v.get("note", "the vault failed its integrity check"),
                   remediation="preserve vault.db as evidence, find the cause (docs/threat-model.md) and restore from a signed backup")

def worst(statuses) -> str:
    statuses = [s for s in statuses if s != "not_applicable"] or ["not_applicable"]
    return max(statuses, key=lambda s: STATUS_RANK[s])


def _parse(ts) -> datetime | None:
    if not ts:
        return None
    try:
        moment = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _fmt(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "never"


def _day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _seqs(item: dict | None) -> str:
    if not item or not item.get("count"):
        return "none"
    return f"{item['count']} (records {item['first_seq']}-{item['last_seq']})" if item["first_seq"] != item["last_seq"] else f"1 (record {item['first_seq']})"


def gaps(times: list[datetime], start: datetime, end: datetime, max_gap_days: float) -> list[tuple[datetime, datetime, float]]:
    """Intervals of ``[start, end]`` longer than ``max_gap_days`` without one of ``times``."""
    out = []
    prev = start
    for t in sorted(x for x in times if start <= x <= end) + [end]:
        span = (t - prev).total_seconds() / 86400
        if span > max_gap_days:
            out.append((prev, t, round(span, 1)))
        prev = max(prev, t)
    return out


def _gap_text(found, what: str, max_gap_days: float, limit: int = 3) -> list[str]:
    lines = [f"no {what} from {_fmt(a)} to {_fmt(b)} ({d:g} d; at most {max_gap_days:g} d allowed)" for a, b, d in found[:limit]]
    if len(found) > limit:
        lines.append(f"... and {len(found) - limit} more gap(s)")
    return lines


# --- context ---------------------------------------------------------------------------
class Context:
    """What every check may read: the evidence, the report's time and period,
    the standard, declarations (scope) and attestations from the audit log."""

    def __init__(self, evidence: dict, now: datetime, start: datetime, std: dict, config=None):
        self.ev = evidence
        self.now = now
        self.start = start
        self.std = std
        self.config = config
        self.period_days = (now - start).total_seconds() / 86400
        # Cadences (reviews, backups, evaluations) are judged from the later of
        # the period start and the installation (record 1 of the log): the
        # part of the period before it is audit_coverage's finding.
        a = evidence.get("audit") or {}
        installed = _parse(a.get("oldest_record")) if a.get("first_seq") == 1 else None
        self.cadence_start = max(start, installed) if installed else start


# --- encryption and keys (C1, C2, C3) -----------------------------------------------------
def encryption_at_rest(ctx: Context, req: dict, params: dict) -> Finding:
    v = ctx.ev["vault"]
    if v.get("integrity_failed"):
        return _vault_integrity_failed(v)
    if not v.get("available"):
        return Finding("not_evaluated", f"no vault to inspect: {v.get('note', 'vault not available')}", remediation="initialise the vault and re-run")
    if v.get("external"):
        return Finding("manual", f"secrets are held by the external provider {v['provider']}: its encryption at rest is the provider's",
                       ["auditor: the provider's encryption-at-rest attestation (SOC 2 report, KMS configuration)"])
    kat = v.get("aead_self_test") or {}
    lines = [f"vault {v['path']}: {v['secrets']} secret(s), {v['versions']} stored version(s)",
             f"cipher observed: {kat.get('result', 'not run')}",
             f"stored versions in sealed form (12-byte nonce + ciphertext + 16-byte tag): {v['versions'] - v['versions_not_sealed_shape']} of {v['versions']}"]
    if not kat.get("ok"):
        return Finding("fail", "the vault's AEAD (AES-256-GCM) failed its known-answer test", lines, "reinstall the cryptography backend")
    if v["versions_not_sealed_shape"]:
        names = ", ".join(v.get("unsealed_names", [])[:5])
        return Finding("fail", f"{v['versions_not_sealed_shape']} stored version(s) are not in sealed form ({names})", lines,
                       "restore the vault from a backup and investigate")
    if not v["versions"]:
        return Finding("not_evaluated", f"vault {v['path']} holds no secret: encryption at rest cannot be observed", lines,
                       "store the secrets in the vault, then re-run")
    return Finding("pass", f"all {v['versions']} stored version(s) in {v['path']} sealed with AES-256-GCM (known-answer test passed)", lines)


def pan_unreadable(ctx: Context, req: dict, params: dict) -> Finding:
    return encryption_at_rest(ctx, req, params)


def key_wrapping(ctx: Context, req: dict, params: dict) -> Finding:
    v = ctx.ev["vault"]
    if v.get("integrity_failed"):
        return _vault_integrity_failed(v)
    if not v.get("available"):
        return Finding("not_evaluated", v.get("note", "vault not available"))
    if v.get("external"):
        return Finding("manual", f"key hierarchy managed by {v['provider']}", ["auditor: the provider's KMS key policy"])
    deks = v["deks"]
    other = [d["id"] for d in deks if d["master_key_id"] != v.get("master_key_id")]
    sizes = sorted({d.get("wrapped_len") for d in deks})
    lines = [f"master key {v.get('master_key_id')} ({v.get('master_source')}) wraps {len(deks) - len(other)} of {len(deks)} data key(s)",
             f"wrapped data-key sizes: {', '.join(map(str, sizes)) or 'none'} bytes (60 = 256-bit key + nonce + tag, AES-256-GCM under a 256-bit KEK)"]
    if other:
        return Finding("fail", f"data key(s) {', '.join(other[:5])} are wrapped by a master key other than {v.get('master_key_id')}", lines,
                       "run zerotrust-admin rotate-keys --force master")
    if not deks:
        return Finding("not_evaluated", "the vault has no data key", lines)
    return Finding("pass", f"{len(deks)} data key(s) stored only wrapped under master key {v.get('master_key_id')} (KEK 256-bit >= DEK 256-bit)", lines)


def key_separation(ctx: Context, req: dict, params: dict) -> Finding:
    """Where the master key (KEK) is stored, apart from the data it protects."""
    v = ctx.ev["vault"]
    if v.get("integrity_failed"):
        return _vault_integrity_failed(v)
    if not v.get("available"):
        return Finding("not_evaluated", v.get("note", "vault not available"))
    if v.get("external"):
        return Finding("manual", f"keys held by {v['provider']}", ["auditor: the provider's key storage"])
    source = v.get("master_source")
    hsm = bool(ctx.config.get("encryption.hsm.enabled")) if ctx.config is not None else False
    keyfile = (ctx.ev.get("files", {}).get("files", {}).get("master_key") or {})
    lines = [f"master key source: {source}; encryption.hsm.enabled: {hsm}"]
    if keyfile.get("exists"):
        lines.append(f"key file {keyfile['path']} mode {keyfile['mode']}")
    if hsm and source not in ("pkcs11", "aws-cloudhsm", "hsm"):
        return Finding("fail", f"encryption.hsm.enabled is true but master key {v.get('master_key_id')} comes from {source!r}", lines,
                       "migrate the master key into the HSM (keys migrate --to hsm)")
    if source == "keyfile":
        return Finding("warning", f"master key {v.get('master_key_id')} is a file ({keyfile.get('path', 'master.key')}) on the vault's host, not in an SCD/HSM", lines,
                       "move the master key into an HSM (encryption.hsm) or a passphrase held apart from the vault")
    return Finding("pass", f"master key {v.get('master_key_id')} held apart from the vault ({source})", lines)


def key_generation(ctx: Context, req: dict, params: dict) -> Finding:
    v = ctx.ev["vault"]
    if (gate := _vault_gate(v, "keys generated by")) is not None:
        return gate
    bad = [d["id"] for d in v["deks"] if d.get("wrapped_len") != 60]
    bad += [k["id"] for k in v.get("session_keys", []) if k.get("wrapped_len") not in (None, 60)]
    gen = v.get("key_generation", {})
    lines = [f"key generator: {gen.get('source', 'unknown')}; sample of {gen.get('sample_bytes', 0)} bytes, {gen.get('distinct', 0)} distinct values",
             f"data keys: {len(v['deks'])}, session keys: {len(v.get('session_keys', []))}; each wrapped blob 60 bytes = 256-bit key"]
    if bad:
        return Finding("fail", f"key(s) {', '.join(bad[:5])} do not have the size of a 256-bit key", lines, "rotate them (rotate-keys --force)")
    if not gen.get("ok"):
        return Finding("fail", "the key generator self-test failed", lines)
    return Finding("pass", f"{len(v['deks'])} data key(s) and {len(v.get('session_keys', []))} session key(s) are 256-bit keys from the OS CSPRNG (os.urandom)", lines)


def key_substitution(ctx: Context, req: dict, params: dict) -> Finding:
    v = ctx.ev["vault"]
    if (gate := _vault_gate(v, "keys held by")) is not None:
        return gate
    fmt = str(v.get("format"))
    lines = [f"vault format {fmt}; key check value present: {bool(v.get('kcv'))}; data-key rows authenticated: {v.get('dek_mac', False)}"]
    if fmt != "2" or not v.get("dek_mac"):
        return Finding("fail", f"vault format {fmt} does not authenticate its key records: a substituted data key would go unnoticed", lines,
                       "upgrade the vault (any write upgrades format 1 to 2)")
    return Finding("pass", f"master key {v.get('master_key_id')} checked by its KCV; {len(v['deks'])} data-key record(s) MAC-authenticated (format 2)", lines)


def retired_keys(ctx: Context, req: dict, params: dict) -> Finding:
    v = ctx.ev["vault"]
    if (gate := _vault_gate(v, "keys held by")) is not None:
        return gate
    retired = {d["id"] for d in v["deks"] if d["state"] == "retired"}
    still = {k: n for k, n in (v.get("versions_per_dek") or {}).items() if k in retired and n}
    lines = [f"retired data keys: {len(retired)}; versions still sealed under one: {sum(still.values())}"]
    if still:
        return Finding("warning", "retired data key(s) still decrypt stored versions: " + ", ".join(f"{k} ({n})" for k, n in sorted(still.items())[:5]),
                       lines, "run zerotrust-admin rotate-keys (re-wraps versions under the active data key)")
    return Finding("pass", f"no stored version depends on a retired data key ({len(retired)} retired)", lines)


def cryptoperiod(ctx: Context, req: dict, params: dict) -> Finding:
    """Key ages replayed day by day over the period (not a snapshot)."""
    v = ctx.ev["vault"]
    if v.get("integrity_failed"):
        return _vault_integrity_failed(v)
    if not v.get("available"):
        return Finding("not_evaluated", v.get("note", "vault not available"))
    if v.get("external"):
        return Finding("manual", "rotation of provider-side keys is the provider's", ["auditor: the provider's key rotation settings"])
    rot = (ctx.config.get("encryption.rotation") if ctx.config is not None else None) or {}
    policy = {"master": rot.get("master_days", 90), "data": rot.get("dek_days", 30)}
    timeline = key_timeline(ctx)
    overdue: dict[str, list[str]] = {}
    day = ctx.start
    while day < ctx.now:
        t = min(day + timedelta(days=1), ctx.now)
        for kind in ("master", "data"):
            key = _active(timeline[kind], t)
            if key is None:
                continue
            age = (t - key[0]).total_seconds() / 86400
            if age > policy[kind]:
                overdue.setdefault(f"{kind} key {key[1]}", []).append(_day(t))
        day += timedelta(days=1)
    current = []
    for k in ctx.ev["vault"].get("session_keys", []):
        if k["state"] == "current" and k.get("age_days") is not None and k["age_days"] > rot.get("session_hours", 24) / 24:
            overdue.setdefault(f"session key {k['id']}", []).append(_day(ctx.now))
    for kind in ("master", "data"):
        key = _active(timeline[kind], ctx.now)
        if key:
            current.append(f"{kind} key {key[1]}: {round((ctx.now - key[0]).total_seconds() / 86400, 2)} d at {_fmt(ctx.now)} (policy {policy[kind]} d)")
    # a key created after the report time (beyond a clock tolerance): clock skew or a backdated report
    future = [f"{kind} key {k[1]} created {_fmt(k[0])}" for kind in ("master", "data") for k in timeline[kind] if k[0] > ctx.now + CLOCK_TOLERANCE]
    lines = current + [f"policy: master {policy['master']} d, data keys {policy['data']} d, session keys {rot.get('session_hours', 24)} h (organisation-defined cryptoperiods)",
                       f"replayed day by day over {len(timeline['master'])} master and {len(timeline['data'])} data key(s)"]
    if future:
        return Finding("fail", f"key(s) dated after the report time: {'; '.join(future[:3])} (clock skew or a backdated report)", lines,
                       "generate the report with the correct time (unset SOURCE_DATE_EPOCH)")
    if overdue:
        parts = [f"{k} past its cryptoperiod on {len(days)} day(s) of the period ({days[0]} to {days[-1]})" for k, days in sorted(overdue.items())]
        return Finding("fail", "; ".join(parts), lines, "run: zerotrust-admin rotate-keys (and schedule it, docs/cron.md)")
    first = min((keys[0][0] for keys in (timeline["master"], timeline["data"]) if keys), default=None)
    if first is not None and first > ctx.start:
        covered = max(0.0, (ctx.now - first).total_seconds() / 86400)
        return Finding("pass", f"every key within its cryptoperiod on every day since the first key ({_day(first)}: {covered:.1f} d of the "
                               f"{ctx.period_days:g}-day period; no key existed before)", lines)
    return Finding("pass", f"every key within its cryptoperiod on every day of the period ({ctx.period_days:g} d)", lines)


def key_timeline(ctx: Context) -> dict:
    v, a = ctx.ev["vault"], ctx.ev["audit"]
    data = sorted((_parse(d["created"]), d["id"]) for d in v.get("deks", []) if _parse(d["created"]))
    masters = []
    for ts in a.get("master_rotations", []):
        moment = _parse(ts)
        if moment:
            masters.append((moment, "(earlier)"))
    current = _parse(v.get("master_created"))
    if current:
        masters = [m for m in masters if m[0] < current - timedelta(seconds=5)]
        masters.append((current, v.get("master_key_id")))
    masters.sort()
    # The master key made with the vault is in no rotation record: it was active
    # from the vault's creation until the first rotation.
    created = _parse(v.get("created"))
    if created and (not masters or masters[0][0] > created + timedelta(seconds=5)):
        masters.insert(0, (created, "(original)"))
    return {"master": masters, "data": data}


def _active(keys: list, t: datetime):
    found = None
    for created, kid in keys:
        if created <= t:
            found = (created, kid)
    return found


def fips_module(ctx: Context, req: dict, params: dict) -> Finding:
    m = ctx.ev.get("fips") or {}
    lines = [f"kernel FIPS mode (/proc/sys/crypto/fips_enabled): {m.get('kernel_fips', 'unknown')}",
             f"OpenSSL: {m.get('openssl', 'unknown')}",
             "no FIPS 140 certificate of the cryptographic module is collected by the tool"]
    return Finding("manual", "FIPS-validated cryptography cannot be shown from the system: attach the module's CMVP certificate (compliance attest)", lines)


# --- transmission and configuration (C4, C5) -----------------------------------------------
def tls_policy(ctx: Context, req: dict, params: dict) -> Finding:
    tls = ctx.ev["config"]["tls"]
    problems = list(tls["problems"]) + list(tls["plaintext_transport"])
    lines = [f"tls.min_version {tls['min_version']}; ciphers: {tls['ciphers'] or 'library defaults (AEAD suites enforced)'}; certificate verification {'on' if tls['verify'] is not False else 'OFF'}",
             "configuration only: no handshake scan of the peers was made"]
    if problems:
        return Finding("fail", "; ".join(problems[:4]), lines, "set tls.min_version: \"1.2\", AEAD-only tls.ciphers, keep verification on, use https/rediss URLs")
    return Finding("pass", f"configuration requires TLS {tls['min_version']}+ with AEAD suites and verified certificates (meets the defined policy)", lines)


def auth_factor_crypto(ctx: Context, req: dict, params: dict) -> Finding:
    at_rest, transit = encryption_at_rest(ctx, req, params), tls_policy(ctx, req, params)
    plain = ctx.ev["config"]["plaintext_secret_keys"]
    status = worst([at_rest.status, transit.status] + (["fail"] if plain else []))
    text = f"storage: {at_rest.text}; transmission: {transit.text}"
    if plain:
        text += f"; plaintext credentials in the config file: {', '.join(plain[:5])}"
    return Finding(status, text, [], at_rest.remediation or transit.remediation)


def no_plaintext_secrets_in_config(ctx: Context, req: dict, params: dict) -> Finding:
    c = ctx.ev["config"]
    keys = c["plaintext_secret_keys"]
    src = c["secret_sources"]
    lines = [f"config file: {c.get('path') or 'none (defaults)'}",
             f"secret sources: {len(src['file_refs'])} *_file reference(s), {len(src['vault_refs'])} vault: reference(s), {len(src['env_overrides'])} from the environment"]
    if keys:
        return Finding("fail", f"plaintext secret(s) in {c.get('path')}: {', '.join(keys[:5])}", lines, "move them to *_file, ${VAR} or vault:NAME")
    return Finding("pass", f"0 plaintext secrets in {c.get('path') or 'the configuration (no file)'}", lines)


def private_file_modes(ctx: Context, req: dict, params: dict) -> Finding:
    f = ctx.ev["files"]
    present = {k: v for k, v in f["files"].items() if v.get("exists")}
    lines = [f"{name}: {info['path']} {info['mode']}" for name, info in sorted(present.items())]
    if f["loose"]:
        return Finding("fail", "; ".join(f"{f['files'][n]['path']} is mode {f['files'][n]['mode']}" for n in f["loose"][:5]), lines,
                       "chmod 600 the files (700 directories)")
    return Finding("pass", f"{len(present)} security-relevant file(s) private (0600/0700)", lines)


# --- audit log (C6) -------------------------------------------------------------------
def _audit_ok(ctx) -> tuple[bool, str]:
    a = ctx.ev["audit"]
    verify = a["verify"]
    return bool(verify.get("ok")), "intact" if verify.get("ok") else f"BROKEN: {verify.get('problem')}"


def audit_coverage(ctx: Context, req: dict, params: dict) -> Finding:
    """The log must cover the whole period: a part it does not cover is a finding."""
    a = ctx.ev["audit"]
    if not a.get("exists") or not a.get("records"):
        return Finding("fail", f"no audit records in {a.get('path')}", [], "check audit.path; every operation writes a record")
    oldest = _parse(a.get("oldest_record"))
    lines = [f"{a['path']}: records {a.get('first_seq')}-{a.get('last_seq')}, oldest {a.get('oldest_record')}, newest {a.get('newest_record')}",
             f"{a['records_in_period']} record(s) in the period {_fmt(ctx.start)} to {_fmt(ctx.now)}"]
    if a.get("records_after_now"):
        return Finding("fail", f"{a['records_after_now']} record(s) dated after the report time (first record {a.get('first_after_now_seq')}): clock skew or a backdated report",
                       lines, "generate the report with the correct time")
    if oldest and oldest > ctx.start + timedelta(hours=1):
        uncovered = round((oldest - ctx.start).total_seconds() / 86400, 1)
        why = "the log starts at record 1 (installation)" if a.get("first_seq") == 1 else f"the log starts at record {a.get('first_seq')}: earlier records are missing"
        return Finding("fail" if a.get("first_seq") != 1 else "warning",
                       f"the log does not cover {_fmt(ctx.start)} to {_fmt(oldest)} ({uncovered} d of the {ctx.period_days:g}-day period); {why}", lines,
                       "report over the period the log covers, or restore the missing records")
    return Finding("pass", f"the log covers the whole period: record {a.get('first_seq')} at {a.get('oldest_record')} precedes {_fmt(ctx.start)}", lines)


EVENT_CLASSES = {
    "reads": "reads of secrets", "admin": "administrative actions (key rotation, backup/restore, MFA enrolment, revocation, reports)",
    "failures": "failed or denied attempts", "credentials": "changes to credentials (secret writes, key rotations, MFA enrolment)",
    "lifecycle": "start, stop or pause of audit logging (installation record, sink failures, recoveries)",
    "objects": "creation and deletion of objects (new secrets, deletions, keys)",
}


def audit_events(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    classes = params.get("classes") or ["reads"]
    ok, chain = _audit_ok(ctx)
    got = {c: (a.get("classes") or {}).get(c) for c in classes}
    lines = [f"{EVENT_CLASSES[c]}: {_seqs(got[c])} in the period" for c in classes] + [f"chain {chain}"]
    if not a.get("records"):
        return Finding("fail", "no audit records", lines)
    if not ok:
        return Finding("fail", f"the log that should hold these events is broken: {chain}", lines, "preserve the log and compare with the SIEM copy")
    missing = [c for c in classes if not (got[c] or {}).get("count")]
    if missing:
        return Finding("warning", f"no {', '.join(EVENT_CLASSES[c].split(' (')[0] for c in missing)} recorded in the period: capture not demonstrated", lines,
                       "exercise the operation (or widen --period) so the record can be shown")
    return Finding("pass", "; ".join(f"{EVENT_CLASSES[c].split(' (')[0]}: {_seqs(got[c])}" for c in classes), lines)


def audit_record_content(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    bad = a.get("records_missing_fields", 0)
    lines = [f"required fields: timestamp, user, action, resource, source_ip, success; checked on {a.get('records', 0)} record(s)"]
    if not a.get("records"):
        return Finding("fail", "no audit records", lines)
    if bad:
        seqs = ", ".join(map(str, a.get("missing_field_seqs", [])[:5]))
        return Finding("fail", f"{bad} record(s) lack a required field ({', '.join(a.get('missing_fields', {}))}): records {seqs}", lines,
                       "find what wrote them; every writer goes through AuditLog.append")
    return Finding("pass", f"all {a['records']} records (1-{a.get('last_seq')}) carry user, event, time, outcome, origin and resource", lines)


def timestamps(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    back = a.get("timestamps_backwards", 0)
    lines = [f"records out of time order by more than 1 s: {back}", f"records dated after the report time: {a.get('records_after_now', 0)}",
             "timestamps are UTC (ISO 8601 with Z) from the system clock"]
    if a.get("records_after_now"):
        return Finding("fail", f"{a['records_after_now']} record(s) dated after the report time (first record {a.get('first_after_now_seq')})", lines)
    if back:
        return Finding("warning", f"{back} record(s) earlier than their predecessor (first record {a.get('first_backwards_seq')}): the clock stepped back", lines,
                       "synchronise the clock (SC-45)")
    return Finding("pass", f"{a.get('records', 0)} record(s) in time order, UTC", lines)


def audit_log_access(ctx: Context, req: dict, params: dict) -> Finding:
    files = ctx.ev["files"]["files"]
    names = ("audit_log", "audit_key", "audit_head")
    lines = [f"{files[n]['path']}: {files[n]['mode']} owner uid {files[n].get('owner_uid')}" for n in names if files.get(n, {}).get("exists")]
    loose = [files[n] for n in names if files.get(n, {}).get("exists") and not files[n].get("private")
             and not (n == "audit_log" and files[n].get("mode") == "0640")]
    if not files.get("audit_log", {}).get("exists"):
        return Finding("fail", "no audit log file", lines)
    if loose:
        return Finding("fail", "; ".join(f"{f['path']} is readable by others (mode {f['mode']})" for f in loose), lines, "chmod 600 the audit files")
    return Finding("pass", f"{files['audit_log']['path']} mode {files['audit_log']['mode']}: read access limited to its owner", lines)


def audit_log_protected(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    ok, chain = _audit_ok(ctx)
    access = audit_log_access(ctx, req, params)
    head = a.get("chain_head") or {}
    lines = [f"hash chain: {chain}", f"head anchor: record {head.get('seq', '-')}", f"files: {access.text}"]
    if not ok:
        return Finding("fail", f"modification detected: {chain}", lines, "preserve the log as evidence and compare with the SIEM copy")
    if access.status != "pass":
        return Finding(access.status, access.text, lines, access.remediation)
    return Finding("pass", f"records 1-{a.get('last_seq')} chained and MAC'd, head anchored at record {head.get('seq', '-')}; files private", lines)


def audit_chain_integrity(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    ok, chain = _audit_ok(ctx)
    lines = [f"verified {a['verify'].get('records')} record(s) at report time", *(a["verify"].get("warnings") or [])]
    if a.get("unreadable_lines"):
        return Finding("fail", f"{a['unreadable_lines']} unreadable line(s) in {a['path']}", lines)
    if not ok:
        bad = a["verify"].get("first_bad_seq")
        return Finding("fail", f"change detected at record {bad}: {a['verify'].get('problem')}" if bad else f"change detected: {a['verify'].get('problem')}", lines,
                       "preserve the log as evidence and compare with the SIEM copy")
    return Finding("pass", f"hash chain over records 1-{a.get('last_seq')} verified: no change", lines)


def audit_central_copy(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    sinks = [str(s) for s in a["sinks"]]
    remote = [s for s in sinks if s != "file"]
    lines = [f"sinks: {', '.join(sinks)}; on sink failure: {a['on_sink_failure']}"]
    if not remote:
        return Finding("fail", "records are kept only in the local file: no copy to a central, hard-to-modify store", lines,
                       "add a syslog or webhook sink (audit.sinks) to the SIEM")
    return Finding("pass", f"every record is also shipped to {', '.join(remote)} (on failure: {a['on_sink_failure']})", lines)


def audit_retention(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    required = ctx.std.get("retention_days")
    configured = a.get("retention_days_configured")
    covered = a.get("oldest_age_days") or 0
    lines = [f"required: {required} d ({ctx.std.get('retention_note')})" if required else str(ctx.std.get("retention_note")),
             f"audit.retention_days: {configured if configured is not None else 'not set (records are never pruned by the tool)'}",
             f"the log holds {covered} d (record {a.get('first_seq')} at {a.get('oldest_record')})"]
    if not a.get("records"):
        return Finding("fail", "no audit records", lines)
    if required and configured is not None and configured < required:
        return Finding("fail", f"audit.retention_days is {configured}, below the {required} d required", lines, f"set audit.retention_days >= {required}")
    if required and covered < required:
        if a.get("first_seq") not in (None, 1):
            return Finding("fail", f"the log starts at record {a['first_seq']} (earlier records pruned) and holds {covered} d of the {required} d required", lines)
        return Finding("warning", f"retention not yet demonstrable: the log holds {covered} d since installation (record 1), {required} d required", lines,
                       "keep the log; the requirement can be shown once the system is old enough")
    return Finding("pass", f"the log holds {covered} d (>= {required} d) without pruning" if required else f"the log holds {covered} d", lines)


def audit_failure_detection(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    failures = (a.get("classes") or {}).get("sink_failures")
    lines = [f"on_sink_failure: {a['on_sink_failure']}", f"sink failures recorded in the period: {_seqs(failures)}"]
    if a["on_sink_failure"] not in ("refuse", "warn"):
        return Finding("fail", f"audit.on_sink_failure is {a['on_sink_failure']!r}: sink failures are not surfaced", lines)
    if failures and failures.get("count"):
        return Finding("warning", f"{_seqs(failures)} audit sink failure(s) recorded in the period", lines, "check the SIEM/syslog link")
    return Finding("pass", f"sink failures are detected and recorded (policy {a['on_sink_failure']}); none in the period", lines)


def audit_processing(ctx: Context, req: dict, params: dict) -> Finding:
    a = ctx.ev["audit"]
    lines = ["audit search (user, event, resource, time filters), audit anomalies and this report process the records automatically"]
    if a.get("unreadable_lines"):
        return Finding("fail", f"{a['unreadable_lines']} line(s) cannot be processed", lines)
    return Finding("pass", f"all {a.get('records', 0)} record(s) machine-readable (canonical JSON); processed by this report", lines)


# --- review and monitoring (C7) -----------------------------------------------------------
def _times(ctx, key) -> list[datetime]:
    return [t for t in (_parse(x) for x in ctx.ev["audit"].get("period_events", {}).get(key, [])) if t]


def review_cadence(ctx: Context, req: dict, params: dict) -> Finding:
    cadence = params.get("max_gap_days") or ctx.std.get("review_cadence_days")
    reviews = _times(ctx, "anomaly_review")
    lines = [f"anomaly reviews recorded in the period: {len(reviews)}; last {_fmt(max(reviews)) if reviews else 'never'}",
             f"cadence: {ctx.std.get('review_note')}"]
    if not reviews:
        return Finding("fail", f"no anomaly review recorded in the period ({_fmt(ctx.start)} to {_fmt(ctx.now)})", lines,
                       "schedule: zerotrust-admin audit anomalies --notify")
    if cadence:
        found = gaps(reviews, ctx.cadence_start, ctx.now, cadence)
        if found:
            return Finding("fail", f"{len(found)} gap(s) longer than {cadence:g} d between reviews; longest {max(g[2] for g in found):g} d", lines + _gap_text(found, "review", cadence),
                           "schedule 'zerotrust-admin audit anomalies --notify' at the standard's cadence")
        return Finding("pass", f"{len(reviews)} review(s); no gap longer than {cadence:g} d over the period", lines)
    return Finding("pass", f"{len(reviews)} review(s) in the period (no frequency fixed by the standard)", lines)


def automated_review(ctx: Context, req: dict, params: dict) -> Finding:
    an = ctx.ev["anomalies"]
    lines = ["detectors: unusual hours, volume spikes, new networks, locations, impossible travel, failure bursts",
             f"window {an.get('since')} to {an.get('until')}: {len(an.get('findings') or [])} anomaly(ies)"]
    if not an.get("enabled"):
        return Finding("fail", "anomaly detection disabled (security.anomaly_detection.enabled: false)", lines, "enable it")
    reviews = _times(ctx, "anomaly_review")
    if not reviews:
        return Finding("warning", "detectors are enabled and run by this report, but no automated review (audit anomalies) ran in the period", lines,
                       "schedule: zerotrust-admin audit anomalies --notify")
    return Finding("pass", f"automated detectors enabled; {len(reviews)} automated review(s) in the period", lines)


def anomalies_addressed(ctx: Context, req: dict, params: dict) -> Finding:
    an = ctx.ev["anomalies"]
    last = (ctx.ev["audit"].get("last") or {}).get("anomaly_review")
    high = [f for f in an.get("findings") or [] if f["severity"] == "high"]
    after = [f for f in high if not last or f["end"] > last["timestamp"]]
    lines = [f"high-severity anomalies in the window: {len(high)}", f"last review: {last['timestamp'] if last else 'never'}"]
    if after:
        return Finding("fail", f"{len(after)} high-severity anomaly(ies) not reviewed: " + "; ".join(f"{f['kind']} by {f['user']} at {f['start']}" for f in after[:3]), lines,
                       "review them: zerotrust-admin audit anomalies")
    return Finding("pass", f"no unreviewed high-severity anomaly ({len(high)} in the window)", lines)


def evaluation_cadence(ctx: Context, req: dict, params: dict) -> Finding:
    gap = params.get("max_gap_days", 30)
    runs = _times(ctx, "compliance_report")
    lines = [f"compliance report runs in the period: {len(runs)}; this run verified the audit chain and the vault at {_fmt(ctx.now)}",
             f"cadence: {params.get('note') or f'at least every {gap:g} d'}"]
    found = gaps(runs + [ctx.now], ctx.cadence_start, ctx.now, gap)
    if found:
        return Finding("fail", f"no evaluation for {max(g[2] for g in found):g} d of the period (at most {gap} d allowed)", lines + _gap_text(found, "evaluation", gap),
                       "schedule compliance-report (cron) at least every %g days" % gap)
    return Finding("pass", f"{len(runs)} earlier evaluation(s); none more than {gap} d apart", lines)


integrity_check_cadence = evaluation_cadence


# --- access (C8) ------------------------------------------------------------------
ADMIN_ACTIONS = ("rotate", "restore", "backup", "mfa", "revoke", "delete", "notify", "report")


def _wild(glob: str) -> bool:
    return any(c in glob for c in "*?[")


def _probe(glob: str) -> str:
    """A name the glob matches that no real principal is expected to have."""
    text = re.sub(r"\[!?([^\]]+)\]", lambda m: m.group(1)[0] if not m.group(0).startswith("[!") else "z", glob)
    return text.replace("*", "zz-unlisted").replace("?", "z")


def effective_permissions(ctx: Context) -> dict:
    """Who can do what on which secrets, wildcards expanded: every allow rule
    with a glob principal is evaluated (with every rule in order, deny rules
    included) for an unlisted principal that glob admits, over every secret in
    the vault and a name not yet created."""
    acc = ctx.ev["access"]
    if getattr(ctx, "_perms", None) is not None:
        return ctx._perms
    from zerotrust_admin.access import load_policies
    from zerotrust_admin.access.engine import evaluate
    from zerotrust_admin.access.policy import ACTIONS

    try:
        rules = load_policies(ctx.config) if ctx.config is not None else []
    except Exception:  # reported by the access collector
        rules = []
    secrets = list(ctx.ev["vault"].get("secret_names") or [])
    future = "zz-new/secret-created-later"
    out = []
    for rule in rules:
        if rule.effect != "allow":
            continue
        for glob in rule.principals:
            if not _wild(glob):
                continue
            who = _probe(glob)
            grants = {}
            for action in ACTIONS:
                allowed = [s for s in secrets if evaluate(rules, who, action, s).allowed]
                new = evaluate(rules, who, action, future).allowed
                if allowed or new:
                    grants[action] = {"secrets": allowed, "new_names": new}
            out.append({"rule": rule.index, "principal": glob, "grants": grants, "describe": rule.describe()})
    ctx._perms = {"rules": len(rules), "secrets": len(secrets), "wildcards": out}
    return ctx._perms


def _everything(grant: dict, total: int) -> bool:
    """Every existing secret (listing them by prefix is no narrower than '*'), or
    an empty vault's every future name."""
    return len(grant["secrets"]) == total and (total > 0 or bool(grant.get("new_names")))


def _reach(grant: dict | None) -> str:
    """Which prefixes a grant reaches: 'db/ (2), app/ (1) + names created later'."""
    if not grant:
        return "nothing"
    prefixes: dict[str, int] = {}
    for name in grant["secrets"]:
        head = name.split("/", 1)[0] + "/" if "/" in name else name
        prefixes[head] = prefixes.get(head, 0) + 1
    parts = [f"{p} ({n})" for p, n in sorted(prefixes.items())]
    if grant.get("new_names"):
        parts.append("names created later")
    return ", ".join(parts) or "nothing"


def least_privilege(ctx: Context, req: dict, params: dict) -> Finding:
    acc = ctx.ev["access"]
    if not acc.get("available"):
        return Finding("not_evaluated", acc.get("note", "access policies not installed"))
    if acc.get("error"):
        return Finding("fail", f"access.policies do not load: {acc['error']}", [], "fix access.policies")
    if not acc["policies"]:
        return Finding("fail", "no access.policies: every local operator with file access may do everything", [], "define access.policies (default deny once any rule exists)")
    perms = effective_permissions(ctx)
    total = perms["secrets"]
    bad, broad = [], []
    for w in perms["wildcards"]:
        g = w["grants"]
        everything_read = "read" in g and _everything(g["read"], total)
        admin = [a for a in ("write", "delete", "rotate", "restore") if a in g and _everything(g[a], total)]
        who = "anyone" if w["principal"] in ("*", "*@*") else f"any principal matching {w['principal']}"
        if everything_read or len(admin) >= 2:
            what = ("admin (" + ", ".join(admin) + ")") if len(admin) >= 2 else "read"
            later = " and any created later" if g.get("read" if everything_read else admin[0], {}).get("new_names") else ""
            bad.append(f"rule {w['rule']}: {who} may {what} every secret ({total} of {total}{later})")
        elif w["principal"] in ("*", "*@*") and g:
            some = sorted({s for a in g.values() for s in a["secrets"]})
            broad.append(f"rule {w['rule']}: anyone may {', '.join(sorted(g))} on {len(some)} secret(s) ({', '.join(some[:3]) or 'new names'})")
    lines = [f"{perms['rules']} rule(s); {total} secret(s) in the vault; wildcard principals expanded: {len(perms['wildcards'])}"] + [w["describe"] for w in perms["wildcards"][:5]]
    lines += [f"{w['principal']} (rule {w['rule']}) can read: {_reach(w['grants'].get('read'))}; write: {_reach(w['grants'].get('write'))}"
              for w in perms["wildcards"][:10]]
    if bad:
        return Finding("fail", "; ".join(bad[:3]), lines + bad[3:], "grant named principals or groups on the prefixes they need")
    if broad:
        return Finding("warning", "; ".join(broad[:3]), lines, "narrow '*' principals to named principals or realms")
    return Finding("pass", f"{acc['policies']} rule(s); no wildcard principal can read or administer every secret", lines)


def privileged_access(ctx: Context, req: dict, params: dict) -> Finding:
    acc = ctx.ev["access"]
    if not acc.get("available") or acc.get("error") or not acc.get("policies"):
        return least_privilege(ctx, req, params)
    perms = effective_permissions(ctx)
    wild = [(w, sorted(a for a in w["grants"] if a in ADMIN_ACTIONS)) for w in perms["wildcards"]]
    wild = [(w, acts) for w, acts in wild if acts]
    holders = acc.get("privileged_holders") or []
    lines = ["privileged actions: " + ", ".join(ADMIN_ACTIONS), "named holders: " + (", ".join(holders[:10]) or "none")]
    if wild:
        return Finding("fail", "; ".join(f"rule {w['rule']}: any principal matching {w['principal']} may {', '.join(acts)}" for w, acts in wild[:3]), lines,
                       "grant privileged actions to named administrators only")
    return Finding("pass", f"privileged actions held by {len(holders)} named principal(s) only", lines)


def deny_by_default(ctx: Context, req: dict, params: dict) -> Finding:
    acc = ctx.ev["access"]
    if not acc.get("available"):
        return Finding("not_evaluated", acc.get("note", "access policies not installed"))
    if acc.get("error") or not acc.get("policies"):
        return Finding("fail", "no access.policies: everything is allowed", [], "define access.policies")
    return Finding("pass", f"{acc['policies']} rule(s) loaded; a request no rule allows is denied", [])


def access_control_enforced(ctx: Context, req: dict, params: dict) -> Finding:
    base = deny_by_default(ctx, req, params)
    denied = (ctx.ev["audit"].get("classes") or {}).get("denied")
    base.evidence.append(f"access_denied records in the period: {_seqs(denied)}")
    if base.status == "pass":
        base.text = f"{ctx.ev['access']['policies']} rule(s) enforced on every command; denials recorded: {_seqs(denied)}"
    return base


# --- authentication (C9, C10) -------------------------------------------------------------
def mfa_required(ctx: Context, req: dict, params: dict) -> Finding:
    m = ctx.ev["mfa"]
    missing = params.get("missing", "warning")
    if not m.get("available"):
        return Finding("not_evaluated", m.get("note", "MFA not installed"))
    if m.get("error"):
        return Finding("fail", f"security.mfa does not load: {m['error']}", [])
    cov = ctx.ev["audit"].get("mfa_coverage") or {}
    sensitive = m.get("sensitive_secrets") or 0
    lines = [f"factor: {m['factor']}; required for {sensitive} sensitive secret(s) and globs {', '.join(m['required_for']) or 'none'}",
             f"sensitive reads in the period: {cov.get('sensitive_reads', 0)}, MFA-verified: {cov.get('verified', 0)}"]
    if not m.get("enabled") or (not m["required_for"] and not sensitive):
        return Finding(missing, "MFA is required for no secret (no --sensitive secret, security.mfa.required_for empty)", lines,
                       "mark sensitive secrets (vault put --sensitive) or set security.mfa.required_for")
    reads = cov.get("sensitive_reads", 0)
    if reads and cov.get("verified", 0) < reads:
        share = round(100.0 * cov.get("verified", 0) / reads, 1)
        return Finding("fail", f"{reads - cov['verified']} of {reads} sensitive read(s) in the period were not MFA-verified ({share}% coverage; first record {cov.get('first_unverified_seq')})",
                       lines, "find how they were read without a code")
    if not reads:
        return Finding("pass", f"MFA required for {sensitive} sensitive secret(s); no sensitive read in the period to measure", lines)
    return Finding("pass", f"100% of {reads} sensitive read(s) in the period were MFA-verified", lines)


def mfa_replay_resistant(ctx: Context, req: dict, params: dict) -> Finding:
    m = ctx.ev["mfa"]
    if not m.get("available"):
        return Finding("not_evaluated", m.get("note", "MFA not installed"))
    replays = (ctx.ev["audit"].get("classes") or {}).get("mfa_replays")
    lines = ["TOTP codes are single use: a reused code is refused and recorded (reason 'replayed')", f"refused replays in the period: {_seqs(replays)}"]
    if not m.get("enabled") or (not m.get("required_for") and not m.get("sensitive_secrets")):
        return Finding(params.get("missing", "warning"), "MFA is required for no secret", lines)
    return Finding("pass", f"TOTP (RFC 6238) codes single-use; replays refused in the period: {_seqs(replays)}", lines)


def lockout(ctx: Context, req: dict, params: dict) -> Finding:
    lk = ctx.ev.get("lockout") or {}
    if not lk.get("available"):
        return Finding("not_evaluated", lk.get("note", "lockout not installed"))
    if lk.get("error"):
        return Finding("fail", f"security.lockout does not load: {lk['error']}")
    max_attempts = params.get("max_attempts")
    window = params.get("window_minutes")
    min_lock = params.get("min_lock_minutes")
    events = (ctx.ev["audit"].get("classes") or {}).get("lockouts")
    lines = [f"security.lockout: enabled {lk['enabled']}, {lk['max_failures']} failures in {lk['window_seconds'] / 60:g} min, lock {lk['base_delay_seconds'] / 60:g}-{lk['max_delay_seconds'] / 60:g} min",
             (f"required: at most {max_attempts} attempts" + (f" in {window} min" if window else "") + (f", locked at least {min_lock} min" if min_lock else "")
              if max_attempts else "the standard fixes no lockout figure"),
             f"lockouts in the period: {_seqs(events)}"]
    if not lk["enabled"]:
        return Finding("fail", "security.lockout.enabled is false", lines, "enable lockout")
    problems = []
    if max_attempts and lk["max_failures"] > max_attempts:
        problems.append(f"{lk['max_failures']} attempts allowed (at most {max_attempts})")
    if window and lk["window_seconds"] < window * 60:
        problems.append(f"failures counted over {lk['window_seconds'] / 60:g} min (at least {window} min)")
    if min_lock and lk["base_delay_seconds"] < min_lock * 60:
        problems.append(f"first lock lasts {lk['base_delay_seconds'] / 60:g} min (at least {min_lock} min)")
    if problems:
        fix = [f"max_failures <= {max_attempts}"] + ([f"base_delay_seconds >= {min_lock * 60}"] if min_lock else [])
        return Finding("fail", "security.lockout: " + "; ".join(problems), lines, "set security.lockout." + " and ".join(fix))
    return Finding("pass", f"locked after {lk['max_failures']} failed attempts for at least {lk['base_delay_seconds'] / 60:g} min", lines)


ROTATION_TOLERANCE = timedelta(days=1)  # a daily cron finishes a due rotation within a day of its due time


def secret_rotation(ctx: Context, req: dict, params: dict) -> Finding:
    """Application and system account passwords (the managed secrets of
    ``secret_rotation``) changed at their cadence: each one's rotations are
    replayed day by day from the audit log's ``secret_rotation`` records (a
    rotation counts from its ``finished`` step) against its ``every`` (+1 day for
    the cron run; at most ``params.max_days`` when set). Failed steps in the
    period are a warning. No managed password: the process is for an auditor."""
    sr = ctx.ev.get("secret_rotation") or {}
    a = ctx.ev["audit"]
    excluded = set(params.get("exclude_kinds", ["tls"]))  # certificates and their keys are not passwords
    max_days = params.get("max_days")
    if not sr.get("available", True):
        return Finding("not_evaluated", sr.get("note") or "the secret_rotation configuration could not be read",
                       remediation="fix the configuration: zerotrust-admin config check")
    managed = [m for m in sr.get("managed") or [] if m.get("kind") not in excluded]
    failures = a.get("secret_rotation_failures") or []
    failed_lines = [f"failed rotation step: {f['secret']} at {f.get('step') or '?'} on {f['timestamp'][:16].replace('T', ' ')}"
                    f" ({f.get('error') or 'failed'}; audit record {f.get('seq')})" for f in failures[:10]]
    count = a.get("secret_rotation_failures_count", len(failures))
    if count > len(failed_lines):
        failed_lines.append(f"... and {count - len(failed_lines)} more failed step(s)")
    if not managed:
        return Finding("manual", "no application or system account password is rotated by this tool (no secret_rotation entry"
                       + (" other than certificates" if sr.get("managed") else "") + "): evidence of the process that changes them is needed",
                       failed_lines + ["auditor: the procedure and records of password changes for system and application accounts "
                                       "(or manage them with rotate-secrets: docs/secret-rotation.md)"])
    if not a.get("available", True) or not (a.get("verify") or {}).get("ok"):
        return Finding("not_evaluated", "the audit log, which holds the rotation history, is missing or does not verify",
                       remediation="see audit_chain_integrity; zerotrust-admin audit verify")
    rotations = a.get("secret_rotations") or {}
    overdue: dict[str, list[str]] = {}
    lines = []
    for m in sorted(managed, key=lambda m: m["secret"]):
        every = float(m.get("every_seconds") or 0)
        limit_s = every + ROTATION_TOLERANCE.total_seconds() if every else None
        if max_days:
            limit_s = min(limit_s, max_days * 86400.0) if limit_s else max_days * 86400.0
        times = sorted(t for t in (_parse(x) for x in rotations.get(m["secret"], [])) if t is not None and t <= ctx.now + CLOCK_TOLERANCE)
        in_period = [t for t in times if t >= ctx.start]
        last = times[-1] if times else None
        lines.append(f"{m['secret']} ({m['kind']}): every {every / 86400:g} d"
                     + (f", judged against at most {limit_s / 86400:g} d" if limit_s else "")
                     + f"; {len(in_period)} rotation(s) in the period; last {_fmt(last) if last else 'never (no finished rotation in the log)'}")
        if not limit_s:
            continue
        day, i, newest = ctx.start, 0, None
        while day < ctx.now:
            t = min(day + timedelta(days=1), ctx.now)
            while i < len(times) and times[i] <= t:
                newest, i = times[i], i + 1
            if t > ctx.cadence_start:
                # Before its first recorded rotation a secret's age counts from the later of the period
                # start and the installation (record 1): the log cannot say when its value was set before.
                age = (t - (newest or ctx.cadence_start)).total_seconds()
                if age > limit_s:
                    overdue.setdefault(m["secret"], []).append(_day(t))
            day += timedelta(days=1)
    basis = (f"replayed day by day from the audit log's secret_rotation records (finished steps) over {ctx.period_days:g} d; "
             f"before a secret's first recorded rotation its age counts from {_fmt(ctx.cadence_start)}")
    lines.append(basis)
    if max_days:
        lines.append(f"{req.get('id')}: at most {max_days:g} days; user passwords of the realm are password_only_users' finding")
    if overdue:
        parts = [f"{name} overdue on {len(days)} day(s) of the period ({days[0]} to {days[-1]})" for name, days in sorted(overdue.items())]
        return Finding("fail", "; ".join(parts), lines + failed_lines,
                       "run: zerotrust-admin rotate-secrets from cron (docs/secret-rotation.md) and see secrets status")
    if failures:
        return Finding("warning", f"{count} failed rotation step(s) in the period: "
                       + ", ".join(dict.fromkeys(f"{f['secret']} at {f.get('step') or '?'}" for f in failures[:5])),
                       lines + failed_lines, "see secrets status and the audit log (event secret_rotation); the next run retries them")
    return Finding("pass", f"{len(managed)} managed password(s) rotated within their cadence on every day of the period", lines)


def password_only_users(ctx: Context, req: dict, params: dict) -> Finding:
    return Finding("manual", "the tool holds no user passwords (Kerberos identities); 8.3.9 applies to the KDC's password policy where passwords are the only factor",
                   ["auditor: the realm's password policy (kadmin get_policy) or MFA for all users"])


def sts_credentials(ctx: Context, req: dict, params: dict) -> Finding:
    aws = ctx.ev["aws"]
    if not aws.get("configured"):
        return Finding("not_applicable", "no AWS roles configured (aws.roles): no STS credentials are issued")
    lines = [f"aws.duration_seconds {aws['duration_seconds']}; allowed accounts {', '.join(aws['allowed_accounts']) or 'none'}"]
    problems = []
    if int(aws["duration_seconds"] or 3600) > 3600:
        problems.append(f"aws.duration_seconds is {aws['duration_seconds']} (> 3600)")
    if not aws["allowed_accounts"]:
        problems.append("no aws.allowed_accounts allow-list")
    if aws["roles_outside_allow_list"]:
        problems.append(f"roles outside the allow-list: {', '.join(aws['roles_outside_allow_list'][:3])}")
    if problems:
        return Finding("fail", "; ".join(problems), lines, "keep duration_seconds <= 3600 and set allowed_accounts")
    if aws["roles_without_external_id"]:
        return Finding("warning", f"role(s) without an external ID: {', '.join(aws['roles_without_external_id'][:3])}", lines)
    return Finding("pass", f"{len(aws['roles'])} role(s), credentials live <= {aws['duration_seconds']} s, accounts allow-listed", lines)


def session_expiry(ctx: Context, req: dict, params: dict) -> Finding:
    s = ctx.ev["sessions"]
    if not s.get("available"):
        return Finding("not_evaluated", s.get("note", "sessions not installed"))
    if s.get("error"):
        return Finding("fail", f"sessions configuration: {s['error']}")
    limit = params.get("max_hours")
    lines = [f"session backend {s['backend']}; maximum lifetime {s['max_ttl_hours']} h (sessions.max_ttl)" + (f"; required at most {limit} h" if limit else "; no figure fixed by the standard")]
    if limit and s["max_ttl_hours"] > limit:
        return Finding("fail", f"sessions may live {s['max_ttl_hours']} h (at most {limit} h)", lines, "lower sessions.max_ttl")
    return Finding("pass", f"every session expires after at most {s['max_ttl_hours']} h (enforced by the session store)", lines)


# --- incident response (C11) -----------------------------------------------------------
def revocation(ctx: Context, req: dict, params: dict) -> Finding:
    s = ctx.ev["sessions"]
    last = (ctx.ev["audit"].get("last") or {}).get("revocation:ok")
    lines = [f"revocation commands available: {'yes' if s.get('available') else 'no'}", f"last revocation: {last['timestamp'] + ' (record ' + str(last['seq']) + ')' if last else 'never'}"]
    if not s.get("available"):
        return Finding("not_evaluated", "session store not installed: revocation cannot be exercised", lines)
    if not last or (ctx.now - _parse(last["timestamp"])).days > 365:
        return Finding("warning", "no revocation (drill or real) recorded in the last 12 months", lines, "run a revocation drill (docs/runbooks)")
    return Finding("pass", f"revocation exercised at {last['timestamp']} (record {last['seq']})", lines)


def notification_channels(ctx: Context, req: dict, params: dict) -> Finding:
    n = ctx.ev["notify"]
    test = (ctx.ev["audit"].get("last") or {}).get("notify_test:ok")
    lines = [f"channels: {', '.join(n.get('channels') or []) or 'none'}; enabled: {n.get('enabled')}",
             f"last successful notify test: {test['timestamp'] + ' (record ' + str(test['seq']) + ')' if test else 'never'}"]
    if not n.get("available"):
        return Finding("not_evaluated", "breach notifications not installed", lines)
    if not n.get("enabled") or not n.get("channels"):
        return Finding("fail", "no breach-notification channel configured", lines, "configure security.breach_notification.channels")
    if not test or (ctx.now - _parse(test["timestamp"])).days > 365:
        return Finding("warning", f"{len(n['channels'])} channel(s), but no successful 'notify test' in the last 12 months", lines, "run: zerotrust-admin notify test")
    return Finding("pass", f"{len(n['channels'])} channel(s), tested at {test['timestamp']}", lines)


def breach_records(ctx: Context, req: dict, params: dict) -> Finding:
    breaches = (ctx.ev["audit"].get("classes") or {}).get("breaches")
    if not breaches or not breaches.get("count"):
        return Finding("not_applicable", "no personal-data breach recorded in the period: the notification duty has not arisen",
                       ["breach notifications sent by the tool in the period: none"])
    return Finding("manual", f"{_seqs(breaches)} breach notification(s) in the period: auditor to check each was made in time", [])


# --- backup (C12) -------------------------------------------------------------------
def backup_cadence(ctx: Context, req: dict, params: dict) -> Finding:
    if ctx.ev["vault"].get("external"):
        return Finding("manual", "backups of the external provider are the provider's")
    gap = params.get("max_gap_days") or 7
    backups = _times(ctx, "backup")
    last = (ctx.ev["audit"].get("last") or {}).get("backup:ok")
    lines = [f"vault backups recorded in the period: {len(backups)}; last {last['timestamp'] + ' (record ' + str(last['seq']) + ')' if last else 'never'}",
             f"cadence: {params.get('note') or f'at least every {gap:g} d'}"]
    if not last:
        return Finding("fail", "no vault backup recorded in the audit log", lines, "schedule 'zerotrust-admin vault backup'")
    found = gaps(backups, ctx.cadence_start, ctx.now, gap)
    if found:
        return Finding("fail", f"{len(found)} gap(s) longer than {gap:g} d without a backup; longest {max(g[2] for g in found):g} d", lines + _gap_text(found, "backup", gap),
                       f"schedule 'zerotrust-admin vault backup' at least every {gap:g} d")
    return Finding("pass", f"{len(backups)} backup(s); no gap longer than {gap:g} d over the period", lines)


def backup_encryption(ctx: Context, req: dict, params: dict) -> Finding:
    last = (ctx.ev["audit"].get("last") or {}).get("backup:ok")
    lines = ["vault backup always encrypts (passphrase via scrypt, or X25519 recipients) and signs the file; no unencrypted mode exists"]
    if not last:
        return Finding("fail", "no vault backup recorded in the audit log", lines)
    return Finding("pass", f"backups encrypted by construction; last at {last['timestamp']} (record {last['seq']})", lines)


def restore_test(ctx: Context, req: dict, params: dict) -> Finding:
    if ctx.ev["vault"].get("external"):
        return Finding("manual", "restore tests of the external provider are the provider's")
    max_age = params.get("max_age_days", 365)
    last = (ctx.ev["audit"].get("last") or {}).get("restore:ok")
    lines = [f"last verified restore: {last['timestamp'] + ' (record ' + str(last['seq']) + ')' if last else 'never'}"]
    if not last or (ctx.now - _parse(last["timestamp"])).days > max_age:
        return Finding("warning" if params.get("missing") != "fail" else "fail", f"no restore test in the last {max_age} d", lines,
                       "test 'vault restore' on a spare host")
    return Finding("pass", f"restore tested at {last['timestamp']} (record {last['seq']})", lines)


# --- memory (C13) and time ----------------------------------------------------------
def memory_protection(ctx: Context, req: dict, params: dict) -> Finding:
    m = ctx.ev["memory"]
    probe = m.get("probe") or {}
    lines = [f"verified in a child process holding a secret: {probe.get('summary', probe.get('error', 'not run'))}",
             f"swap: {', '.join(m['swap_devices']) or 'none'}"]
    if probe.get("error"):
        return Finding("not_evaluated", f"memory probe failed: {probe['error']}", lines)
    problems = []
    if probe.get("core_limit") != 0:
        problems.append(f"core dumps allowed (RLIMIT_CORE={probe.get('core_limit')})")
    if probe.get("dumpable") not in (0, None):
        problems.append("process dumpable")
    if not probe.get("wiped"):
        problems.append("the secret's buffer was not zeroed by wipe()")
    if problems:
        return Finding("fail", "; ".join(problems), lines, "keep the CLI entry point (it disables core dumps)")
    if m["swap_devices"] and not probe.get("locked"):
        return Finding("warning", f"swap is on and the secret was not locked in RAM (VmLck {probe.get('vmlck_kb')} kB)", lines, "raise RLIMIT_MEMLOCK or disable swap")
    return Finding("pass", f"secret held in a child: locked {probe.get('locked')} (VmLck {probe.get('vmlck_kb')} kB), core dumps off, not dumpable, zeroed on wipe", lines)


def clock_sync(ctx: Context, req: dict, params: dict) -> Finding:
    c = ctx.ev.get("clock") or {}
    lines = [f"kernel clock state: {c.get('state', 'unknown')}; estimated error {c.get('esterror_us', '?')} us"]
    if c.get("synchronized") is True:
        return Finding("pass", "the system clock is synchronised (kernel reports no TIME_ERROR)", lines)
    if c.get("synchronized") is False:
        return Finding("fail", "the system clock is not synchronised (kernel TIME_ERROR)", lines, "run an NTP client (chrony, systemd-timesyncd)")
    return Finding("not_evaluated", "the clock synchronisation state could not be read", lines)


def config_changes(ctx: Context, req: dict, params: dict) -> Finding:
    """Configuration changes seen through the digest each report run records."""
    a = ctx.ev["audit"]
    changes = a.get("config_changes") or []
    runs = a.get("config_digests_recorded", 0)
    now = ctx.ev["config"].get("config_sha256") or ""
    lines = [f"report runs in the period recording a configuration digest: {runs}", f"configuration digest now: {now[:16]}"]
    lines += [f"changed between records {c['records'][0]} and {c['records'][1]} ({c['between'][0]} to {c['between'][1]}): {c['from']} -> {c['to']}" for c in changes[:5]]
    if runs < 2:
        return Finding("manual", "configuration changes cannot be shown: fewer than two report runs recorded a configuration digest in the period", lines)
    return Finding("manual", f"the configuration changed {len(changes)} time(s) between the {runs} report runs of the period: auditor to match each with an approved change", lines)


def manual(ctx: Context, req: dict, params: dict) -> Finding:
    return Finding("manual", f"auditor to review: {req.get('look_at') or 'the documented process'}", [])


CHECKS = {name: fn for name, fn in globals().items() if callable(fn) and not name.startswith("_") and name not in
          ("Finding", "Context", "worst", "gaps", "effective_permissions", "key_timeline", "field", "dataclass", "datetime", "timedelta", "timezone")}


# --- evaluation of one requirement -----------------------------------------------------
def _scope_state(ctx: Context, scope: str):
    decl = (ctx.ev["audit"].get("scope") or {}).get(scope)
    return decl


def _attestation(ctx: Context, req_id: str, sid: str):
    best = None
    for att in ctx.ev["audit"].get("attestations") or []:
        if att["requirement"] == req_id and att.get("standard") in (None, "", sid):
            best = att
    return best


def _exception(ctx: Context, req_id: str, sid: str):
    best = None
    for exc in ctx.ev["audit"].get("exceptions") or []:
        if exc["requirement"] == req_id and exc.get("standard") in (None, "", sid):
            best = exc
    return best


def evaluate_requirement(ctx: Context, section: dict, req: dict) -> dict:
    sid = ctx.std["id"]
    base = {"id": req["id"], "title": req["title"], "section": section["id"], "section_title": section["title"],
            "controls": req.get("controls", []), "checks": req.get("checks", [])}
    applies_to = ctx.std.get("applies_to")
    if applies_to:
        # The whole standard concerns one kind of data (HIPAA: ePHI, GDPR: personal data):
        # evaluated unless it is declared out of scope; then every row is N/A, citing it.
        decl = _scope_state(ctx, applies_to)
        if decl and not decl.get("in_scope"):
            text = (f"N/A: the standard applies to {SCOPES[applies_to]}, declared out of scope by {decl['user']} "
                    f"at {decl['timestamp']} (audit record {decl['seq']})")
            return {**base, "status": "not_applicable", "finding": text, "evidence": text, "findings": [], "remediation": "",
                    "scope": {"name": applies_to, "declaration": decl}}
    scope = req.get("scope")
    if scope:
        decl = _scope_state(ctx, scope)
        if not decl or not decl.get("in_scope"):
            cite = (f"declared out of scope by {decl['user']} at {decl['timestamp']} (audit record {decl['seq']})" if decl
                    else "not declared in scope (no 'compliance scope' record)")
            text = f"N/A: {SCOPES[scope]} {cite}"
            return {**base, "status": "not_applicable", "finding": text, "evidence": text, "findings": [], "remediation": "",
                    "scope": {"name": scope, "declaration": decl}}
        base["scope"] = {"name": scope, "declaration": decl}
    findings = []
    for name in req.get("checks", []):
        f = CHECKS[name](ctx, req, req.get("params") or {})
        f.check = name
        findings.append(f)
    status = worst([f.status for f in findings])
    att = _attestation(ctx, req["id"], sid)
    if att is not None and any(f.status == "manual" for f in findings):
        expires = _parse(att.get("expires"))
        text = (f"attested by {att['reviewer']} on {att['timestamp'][:10]}: {att['document']} (SHA-256 {att['sha256'][:16]}...), "
                f"expires {att.get('expires')}; audit record {att['seq']}")
        for f in findings:
            if f.status == "manual":  # what needed an auditor's look: the attestation is that look
                if expires and expires < ctx.now:
                    f.status, f.text = "warning", "attestation EXPIRED: " + text
                    f.remediation = "review the document again and record a new attestation (compliance attest)"
                else:
                    f.status, f.text = "pass", text
        status = worst([f.status for f in findings])
        base["attestation"] = att
    exc = _exception(ctx, req["id"], sid)
    if exc is not None:
        expires = _parse(exc.get("expires"))
        base["exception"] = {**exc, "expired": bool(expires and expires < ctx.now), "applies": status in ("fail", "warning")}
    finding = findings[0].text if len(findings) == 1 else " | ".join(f"{f.check}: {f.text}" for f in findings)
    remediation = "; ".join(dict.fromkeys(f.remediation for f in findings if f.remediation and f.status in ("fail", "warning")))
    # "evidence": this requirement's own finding and the facts behind it, as one text (schema 1.x)
    evidence = "\n".join([finding] + [line for f in findings for line in f.evidence])
    return {**base, "status": status, "finding": finding, "evidence": evidence, "findings": [f.to_dict() for f in findings], "remediation": remediation}


def natural_key(text: str):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(text)) if p != ""]

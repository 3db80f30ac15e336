"""Controls C1-C13 (compliance-map.md): one automated check each.

A check reads the collected evidence and returns a status:
``pass``, ``fail``, ``warning``, ``manual`` (needs an auditor; says what to
look at), ``not_evaluated`` (the subsystem is missing) or ``not_applicable``.
Our thresholds (90/30/1-day rotation, 1-hour STS, TLS 1.2 with AEAD suites)
are stricter than the standards: a pass means "meets the organisation's
defined policy", and the standard's own figure is cited where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("pass", "warning", "fail", "manual", "not_evaluated", "not_applicable")
STATUS_RANK = {"fail": 5, "warning": 4, "not_evaluated": 3, "manual": 2, "pass": 1, "not_applicable": 0}

CONTROLS = {
    "C1": "Secrets encrypted at rest (AES-256-GCM or an external vault)",
    "C2": "Key hierarchy: master key wraps data keys; HSM when enabled",
    "C3": "Key rotation ages within policy (master 90 d, data keys 30 d, session keys 24 h)",
    "C4": "TLS for credential transmission: TLS 1.2+, AEAD suites only",
    "C5": "Configuration security: 0600 files, no plaintext secrets in config",
    "C6": "Audit logging: six fields, hash-chain integrity, retention",
    "C7": "Anomaly detection enabled and anomalies reviewed",
    "C8": "Least privilege: access policies, no wildcard admin access",
    "C9": "Short-lived credentials: STS <= 1 h, external IDs, account allow-list",
    "C10": "MFA required for sensitive secrets",
    "C11": "Incident response: revocation exercised, notification channels tested",
    "C12": "Secure backup and tested recovery of the vault",
    "C13": "Memory protection: no core dumps, no swapping of secrets, wiping",
}


@dataclass
class ControlResult:
    id: str
    title: str
    status: str
    summary: str
    evidence: dict = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    remediation: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "status": self.status, "summary": self.summary, "evidence": self.evidence,
                "findings": self.findings, "remediation": self.remediation}


def _from_check(cid: str, ctx, *names: str, params: dict | None = None) -> ControlResult:
    """A control decided by the per-requirement assertions (requirements.py)."""
    from zerotrust_admin.compliance.requirements import CHECKS, worst

    findings = [CHECKS[n](ctx.rctx, {"id": cid}, params or {}) for n in names]
    status = worst([f.status for f in findings])
    evidence = {}
    for n, f in zip(names, findings):
        evidence[n] = f.text
        for i, line in enumerate(f.evidence):
            evidence[f"{n} ({i + 1})"] = line
    bad = [f.text for f in findings if f.status in ("fail", "warning", "not_evaluated")]
    summary = "; ".join(f.text for f in findings)
    remediation = "; ".join(dict.fromkeys(f.remediation for f in findings if f.remediation and f.status in ("fail", "warning")))
    return ControlResult(cid, CONTROLS[cid], status, summary, evidence, bad, remediation)


def _worst(*statuses: str) -> str:
    return max(statuses, key=lambda s: STATUS_RANK[s])


def _days(hours_or_days, unit="d"):
    return "unknown" if hours_or_days is None else f"{hours_or_days:g} {unit}"


def c1(ev, std, ctx) -> ControlResult:
    if getattr(ctx, "rctx", None) is not None:
        return _from_check("C1", ctx, "encryption_at_rest")
    v = ev["vault"]
    if not v.get("available"):
        return ControlResult("C1", CONTROLS["C1"], "not_evaluated", v.get("note", "vault not available"), {"vault": v.get("note")},
                             remediation="initialise the vault (zerotrust-admin init) and re-run the report")
    if v.get("external"):
        return ControlResult("C1", CONTROLS["C1"], "pass", f"secrets held in the external provider {v['provider']}",
                             {"provider": v["provider"], "note": v["note"]})
    evidence = {"provider": "local (integrated vault)", "algorithm": v["algorithm"], "vault_format": v["format"], "secrets": v["secrets"],
                "versions": v["versions"], "versions_not_in_sealed_form": v["versions_not_sealed_shape"]}
    if v["versions_not_sealed_shape"]:
        return ControlResult("C1", CONTROLS["C1"], "fail", f"{v['versions_not_sealed_shape']} stored versions do not have the sealed (nonce+ciphertext+tag) shape",
                             evidence, [f"{v['versions_not_sealed_shape']} versions not in AEAD form"], "restore the vault from a backup and investigate")
    return ControlResult("C1", CONTROLS["C1"], "pass", f"{v['versions']} secret versions sealed with AES-256-GCM; 0 stored in plaintext form", evidence)


def c2(ev, std, ctx) -> ControlResult:
    v = ev["vault"]
    if not v.get("available"):
        return ControlResult("C2", CONTROLS["C2"], "not_evaluated", v.get("note", "vault not available"))
    if v.get("external"):
        return ControlResult("C2", CONTROLS["C2"], "manual", f"key hierarchy is managed by {v['provider']}",
                             {"provider": v["provider"]}, remediation="auditor: review the provider's key management (KMS/transit) configuration")
    hsm = bool(ctx.config.get("encryption.hsm.enabled"))
    source = v.get("master_source")
    evidence = {"master_key_source": source, "hsm_enabled": hsm, "master_key_id": v.get("master_key_id"), "data_keys": len(v["deks"]),
                "data_keys_wrapped_by_current_master": v["deks_wrapped_by_current_master"], "kek_strength": "AES-256 (>= DEK strength)"}
    findings = []
    status = "pass"
    if v["deks_wrapped_by_current_master"] != len(v["deks"]):
        findings.append(f"{len(v['deks']) - v['deks_wrapped_by_current_master']} data keys are wrapped by another master key")
        status = "fail"
    if hsm and source not in ("pkcs11", "aws-cloudhsm", "hsm"):
        findings.append(f"encryption.hsm.enabled is true but the master key source is {source!r}")
        status = "fail"
    if source == "keyfile" and not hsm:
        findings.append("the master key is a file on the same host as the vault (not an HSM / SCD)")
        status = _worst(status, "warning")
    summary = f"envelope encryption: {len(v['deks'])} data key(s) wrapped by master key {v.get('master_key_id')} ({source})"
    return ControlResult("C2", CONTROLS["C2"], status, summary, evidence, findings,
                         "move the master key into an HSM (encryption.hsm) or a passphrase/env key held apart from the vault" if findings else "")


def c3(ev, std, ctx) -> ControlResult:
    if getattr(ctx, "rctx", None) is not None:
        result = _c3_snapshot(ev, std, ctx)
        replay = _from_check("C3", ctx, "cryptoperiod")
        if replay.status != "pass":
            result.status, result.findings = _worst(result.status, replay.status), result.findings + replay.findings
            result.summary = replay.summary
            result.remediation = result.remediation or replay.remediation
        result.evidence["replay"] = replay.summary
        return result
    return _c3_snapshot(ev, std, ctx)


def _c3_snapshot(ev, std, ctx) -> ControlResult:
    v = ev["vault"]
    if not v.get("available"):
        return ControlResult("C3", CONTROLS["C3"], "not_evaluated", v.get("note", "vault not available"))
    if v.get("external"):
        return ControlResult("C3", CONTROLS["C3"], "manual", "rotation of provider-side keys is reported by keys status", {"provider": v["provider"]},
                             remediation="auditor: check the provider's key rotation settings")
    rot = ctx.config.get("encryption.rotation") or {}
    master_days, dek_days, session_hours = rot.get("master_days", 90), rot.get("dek_days", 30), rot.get("session_hours", 24)
    keys = [{"key": f"master {v.get('master_key_id')}", "kind": "master", "age_days": v.get("master_age_days"), "policy_days": master_days}]
    active = v.get("active_dek")
    for d in v["deks"]:
        if d["state"] == "active":
            keys.append({"key": f"data key {d['id']}", "kind": "dek", "age_days": d["age_days"], "policy_days": dek_days})
    for k in v.get("session_keys", []):
        if k["state"] == "current":
            keys.append({"key": f"session key {k['id']}", "kind": "session", "age_days": k["age_days"], "policy_days": session_hours / 24})
    overdue = [k for k in keys if k["age_days"] is not None and k["age_days"] > k["policy_days"]]
    ctx.key_ages = keys
    rotations = ev["audit"].get("counts", {}).get("key_rotation:ok", 0)
    evidence = {"policy": f"master {master_days} d, data keys {dek_days} d, session keys {session_hours} h (organisation-defined cryptoperiods)",
                "keys": [f"{k['key']}: {k['age_days']} d (policy {k['policy_days']:g} d)" for k in keys],
                "rotations_recorded": rotations, "active_data_key": active["id"] if active else None}
    if overdue:
        return ControlResult("C3", CONTROLS["C3"], "fail", f"{len(overdue)} key(s) older than the defined cryptoperiod", evidence,
                             [f"{k['key']} is {k['age_days']} d old (policy {k['policy_days']:g} d)" for k in overdue],
                             "run: zerotrust-admin rotate-keys (and schedule it, docs/cron.md)")
    oldest = max((k["age_days"] or 0) for k in keys)
    return ControlResult("C3", CONTROLS["C3"], "pass", f"all {len(keys)} keys within the organisation's defined cryptoperiods (oldest {oldest} d)", evidence)


TLS_OK = ("1.2", "1.3")


def c4(ev, std, ctx) -> ControlResult:
    c = ev["config"]
    tls = c["tls"]
    findings = list(tls["problems"]) + list(tls["plaintext_transport"])
    evidence = {"min_version": tls["min_version"], "ciphers": tls["ciphers"] or "library defaults (TLS 1.2+ AEAD suites enforced by policy)",
                "certificate_verification": "on" if tls["verify"] is not False else "OFF",
                "handshake_scan": "not performed by this report; run config check --connect against each peer"}
    if findings:
        return ControlResult("C4", CONTROLS["C4"], "fail", "TLS settings below policy", evidence, findings,
                             "set tls.min_version: \"1.2\", AEAD-only tls.ciphers, keep verification on, use https/rediss URLs")
    return ControlResult("C4", CONTROLS["C4"], "pass", f"minimum TLS {tls['min_version']}, AEAD suites only, certificates verified (meets the defined policy)", evidence)


def c5(ev, std, ctx) -> ControlResult:
    f, c = ev["files"], ev["config"]
    evidence = {name: (f"{info['mode']}" + (" (symlink)" if info.get("symlink") else "")) for name, info in f["files"].items() if info.get("exists")}
    evidence["plaintext_secrets_in_config"] = len(c["plaintext_secret_keys"])
    evidence["secret_sources"] = c["secret_sources"]
    findings = [f"{name} ({f['files'][name]['path']}) has mode {f['files'][name]['mode']}" for name in f["loose"]]
    findings += [f"{key} holds a plaintext secret in the config file" for key in c["plaintext_secret_keys"]]
    if findings:
        return ControlResult("C5", CONTROLS["C5"], "fail", f"{len(findings)} configuration security problem(s)", evidence, findings,
                             "chmod 600 the files (700 directories); move secrets to *_file, ${VAR} or vault:NAME")
    return ControlResult("C5", CONTROLS["C5"], "pass", f"{len([1 for i in f['files'].values() if i.get('exists')])} files private (0600/0700); 0 plaintext secrets in config", evidence)


def c6(ev, std, ctx) -> ControlResult:
    a = ev["audit"]
    verify = a["verify"]
    retention = std.get("retention_days")
    evidence = {"audit_log": a["path"], "records": a["records"], "records_in_period": a["records_in_period"],
                "chain_verification": "intact" if verify.get("ok") else f"FAILED: {verify.get('problem')}",
                "records_missing_required_fields": a["records_missing_fields"], "required_fields": "timestamp, user, action, resource, source_ip, success",
                "oldest_record": a["oldest_record"], "first_seq": a["first_seq"], "unreadable_lines": a["unreadable_lines"],
                "sinks": ", ".join(map(str, a["sinks"])), "sink_failure_policy": a["on_sink_failure"],
                "sink_failures_recorded": a.get("counts", {}).get("sink_failure:failed", 0),
                "audit_log_reads_recorded": _log_reads(a),
                "retention_expected": f"{retention} d ({std.get('retention_note')})" if retention else std.get("retention_note")}
    findings = []
    status = "pass"
    if not a.get("exists") or not a["records"]:
        return ControlResult("C6", CONTROLS["C6"], "fail", "no audit records", evidence, ["the audit log is empty or missing"],
                             "check audit.path; every operation writes a record")
    if not verify.get("ok"):
        findings.append(f"audit chain verification failed: {verify.get('problem')}")
        status = "fail"
    if a["unreadable_lines"]:
        findings.append(f"{a['unreadable_lines']} unreadable line(s) in the audit log")
        status = "fail"
    if a["records_missing_fields"]:
        findings.append(f"{a['records_missing_fields']} record(s) lack one of the six required fields ({a['missing_fields']})")
        status = "fail"
    configured = a.get("retention_days_configured")
    if retention and configured is not None and configured < retention:
        findings.append(f"audit.retention_days is {configured}, below the {retention} days {std['name']} expects")
        status = "fail"
    if retention and a["first_seq"] not in (None, 1) and (a["oldest_age_days"] or 0) < retention:
        findings.append(f"the log starts at record {a['first_seq']} (earlier records pruned) and covers only {a['oldest_age_days']} d of the {retention} d required")
        status = _worst(status, "fail")
    elif retention and a["first_seq"] == 1:
        evidence["retention"] = f"complete since installation ({a['oldest_age_days']} d, record 1 present)"
    if a.get("counts", {}).get("sink_failure:failed"):
        findings.append(f"{a['counts']['sink_failure:failed']} audit sink failure(s) recorded")
        status = _worst(status, "warning")
    for w in verify.get("warnings") or []:
        findings.append(w)
        status = _worst(status, "warning")
    summary = (f"{a['records']} records, chain {'intact' if verify.get('ok') else 'BROKEN'}, "
               f"{a['records'] - a['records_missing_fields']} of {a['records']} with all six fields")
    return ControlResult("C6", CONTROLS["C6"], status, summary, evidence, findings,
                         "preserve the log as evidence and compare with the SIEM copy; fix retention settings" if findings else "")


def _log_reads(a: dict) -> str:
    """The tool's own reads of the whole audit trail that are themselves in the
    log: compliance reports and anomaly reviews (PCI DSS 10.2.1.3 evidence)."""
    counts = a.get("counts", {})
    reports = counts.get("compliance_report:ok", 0) + counts.get("compliance_report:failed", 0)
    last = (a.get("last", {}).get("compliance_report") or {}).get("timestamp")
    return (f"{reports} compliance report run(s) (last {last or 'never'}), "
            f"{counts.get('anomaly_review:ok', 0)} anomaly review(s)")


def c7(ev, std, ctx) -> ControlResult:
    a, an = ev["audit"], ev["anomalies"]
    cadence = std.get("review_cadence_days")
    last = a.get("last", {}).get("anomaly_review")
    reviews = a.get("counts", {}).get("anomaly_review:ok", 0)
    high = [f for f in an.get("findings", []) if f["severity"] == "high"]
    evidence = {"detection_enabled": an.get("enabled"), "reviews_recorded": reviews, "last_review": last["timestamp"] if last else None,
                "review_cadence": std.get("review_note"), "anomalies_in_period": len(an.get("findings", [])), "high_severity": len(high),
                "detectors": "unusual hours, volume spikes (user/overall), new networks, locations, impossible travel, failure bursts"}
    if not an.get("enabled"):
        return ControlResult("C7", CONTROLS["C7"], "fail", "anomaly detection disabled (security.anomaly_detection.enabled: false)", evidence,
                             ["anomaly detection is turned off"], "enable it and schedule: zerotrust-admin audit anomalies --notify")
    findings = []
    status = "pass"
    if not last:
        findings.append("no anomaly review recorded in the audit log")
        status = "fail"
    else:
        age = (ctx.now - _parse(last["timestamp"])).total_seconds() / 86400
        evidence["last_review_age_days"] = round(age, 2)
        if cadence and age > cadence:
            findings.append(f"last review {age:.1f} d ago; {std['name']} expects every {cadence} d")
            status = "fail"
        unreviewed = [f for f in high if f["end"] > last["timestamp"]]
        if unreviewed:
            findings.append(f"{len(unreviewed)} high-severity anomalies after the last review")
            status = _worst(status, "warning")
    summary = f"{reviews} review(s) recorded, last {last['timestamp'] if last else 'never'}; {len(an.get('findings', []))} anomalies in the period ({len(high)} high)"
    return ControlResult("C7", CONTROLS["C7"], status, summary, evidence, findings,
                         "schedule 'zerotrust-admin audit anomalies --notify' (daily for PCI DSS) and review its findings" if findings else "")


def _parse(ts):
    from zerotrust_admin.compliance.evidence import _parse as p

    return p(ts)


def c8(ev, std, ctx) -> ControlResult:
    if getattr(ctx, "rctx", None) is not None:
        return _from_check("C8", ctx, "least_privilege", "privileged_access")
    acc = ev["access"]
    if not acc.get("available"):
        return ControlResult("C8", CONTROLS["C8"], "not_evaluated", acc.get("note", "not available"))
    evidence = {"policies": acc["policies"], "default": acc.get("default"), "wildcard_admin_grants": len(acc.get("wildcard_grants", [])),
                "rules": acc.get("rules", [])[:10], "last_access_review": "manual: not recorded by the tool"}
    if acc.get("error"):
        return ControlResult("C8", CONTROLS["C8"], "fail", "access policies do not load", evidence, [acc["error"]], "fix access.policies")
    if not acc["policies"]:
        return ControlResult("C8", CONTROLS["C8"], "fail", "no access policies configured", evidence,
                             ["no access.policies: least privilege is not enforced by the tool"], "define access.policies (default deny once any rule exists)")
    if acc["wildcard_grants"]:
        return ControlResult("C8", CONTROLS["C8"], "fail", f"{len(acc['wildcard_grants'])} wildcard admin grant(s)", evidence, acc["wildcard_grants"],
                             "replace '*' principals/secrets with named principals and prefixes")
    return ControlResult("C8", CONTROLS["C8"], "pass", f"{acc['policies']} policies, default deny, 0 wildcard admin grants", evidence)


def c9(ev, std, ctx) -> ControlResult:
    aws = ev["aws"]
    if not aws.get("configured"):
        return ControlResult("C9", CONTROLS["C9"], "not_applicable", "no AWS roles configured (aws.roles): no STS credentials are issued",
                             {"aws_roles": 0, "sts_issuer_installed": aws.get("issuer_installed")})
    evidence = {"duration_seconds": aws["duration_seconds"], "roles": len(aws["roles"]), "allowed_accounts": aws["allowed_accounts"] or "none",
                "roles_without_external_id": aws["roles_without_external_id"], "sts_issuer_installed": aws["issuer_installed"]}
    findings = []
    status = "pass"
    if int(aws["duration_seconds"] or 3600) > 3600:
        findings.append(f"aws.duration_seconds is {aws['duration_seconds']} (> 3600, the defined policy)")
        status = "fail"
    if not aws["allowed_accounts"]:
        findings.append("no aws.allowed_accounts allow-list")
        status = "fail"
    if aws["roles_outside_allow_list"]:
        findings.append(f"roles outside the allow-list: {', '.join(aws['roles_outside_allow_list'])}")
        status = "fail"
    if aws["roles_without_external_id"]:
        findings.append(f"{len(aws['roles_without_external_id'])} role(s) without an external ID (required for cross-account roles)")
        status = _worst(status, "warning")
    if not aws["issuer_installed"]:
        findings.append("the STS issuer is not installed in this build")
        status = _worst(status, "not_evaluated")
    return ControlResult("C9", CONTROLS["C9"], status, f"STS lifetime {aws['duration_seconds']} s; {len(aws['roles'])} role(s)", evidence, findings,
                         "keep duration_seconds <= 3600, set allowed_accounts and external_id for cross-account roles" if findings else "")


# lockout figures the standards fix (PCI DSS 8.3.4; FedRAMP AC-7 defers to SP 800-63B: at most 100
# consecutive failures, the Rev 5 Moderate profile sets no AC-7 parameter); the others fix none
LOCKOUT_FIGURES = {"pci-dss": {"max_attempts": 10, "min_lock_minutes": 30}, "fedramp": {"max_attempts": 100}}


def c10(ev, std, ctx) -> ControlResult:
    if getattr(ctx, "rctx", None) is not None:
        # PCI DSS 8.4.x and FedRAMP IA-2(1)/(2) require MFA: none at all fails there
        missing = "fail" if std["id"] in ("pci-dss", "fedramp") else "warning"
        lockout = LOCKOUT_FIGURES.get(std["id"])
        if lockout is None:  # the standard fixes no lockout figure: C10 is MFA alone
            return _from_check("C10", ctx, "mfa_required", params={"missing": missing})
        return _from_check("C10", ctx, "mfa_required", "lockout", params={"missing": missing, **lockout})
    m = ev["mfa"]
    if not m.get("available"):
        return ControlResult("C10", CONTROLS["C10"], "not_evaluated", m.get("note", "MFA not available"))
    if m.get("error"):
        return ControlResult("C10", CONTROLS["C10"], "fail", "security.mfa does not load", {}, [m["error"]], "fix security.mfa")
    sensitive = m.get("sensitive_secrets") or 0
    evidence = {"factor": m["factor"], "required_for": m["required_for"] or "none", "enabled": m["enabled"], "sensitive_secrets": sensitive,
                "sensitive_secrets_always_need_mfa": True}
    if not m["required_for"] and not sensitive:
        return ControlResult("C10", CONTROLS["C10"], "warning", "MFA is available but no secret requires it", evidence,
                             ["no secret is marked --sensitive and security.mfa.required_for is empty"],
                             "mark sensitive secrets (vault put --sensitive) or set security.mfa.required_for")
    return ControlResult("C10", CONTROLS["C10"], "pass", f"TOTP MFA required for {sensitive} sensitive secret(s) and {len(m['required_for'])} glob(s)", evidence)


def c11(ev, std, ctx) -> ControlResult:
    n, a, s = ev["notify"], ev["audit"], ev["sessions"]
    last = a.get("last", {})
    revocation = last.get("revocation:ok")
    test = last.get("notify_test:ok")
    evidence = {"revocation_available": bool(s.get("available")), "last_revocation": revocation["timestamp"] if revocation else None,
                "notification_channels": n.get("channels", []) if n.get("available") else "not installed",
                "notifications_enabled": n.get("enabled"), "last_successful_notify_test": test["timestamp"] if test else None}
    if std["id"] == "gdpr":
        evidence["breach_service_level"] = "72 h to the supervisory authority (Art. 33(1))"
    if not n.get("available"):
        return ControlResult("C11", CONTROLS["C11"], "not_evaluated", "breach notifications not installed", evidence)
    findings = []
    status = "pass"
    if not n.get("enabled") or not n.get("channels"):
        findings.append("no breach-notification channel configured")
        status = "fail"
    year = 365
    if not test or (ctx.now - _parse(test["timestamp"])).days > year:
        findings.append("no successful 'notify test' in the last 12 months")
        status = _worst(status, "warning")
    if not revocation or (ctx.now - _parse(revocation["timestamp"])).days > year:
        findings.append("no revocation (drill or real) recorded in the last 12 months")
        status = _worst(status, "warning")
    return ControlResult("C11", CONTROLS["C11"], status,
                         f"{len(n.get('channels') or [])} channel(s); last notify test {test['timestamp'] if test else 'never'}; last revocation {revocation['timestamp'] if revocation else 'never'}",
                         evidence, findings, "configure channels, run 'zerotrust-admin notify test' and a revocation drill (docs/runbooks)" if findings else "")


BACKUP_GAP_DAYS = {"fedramp": 1}  # CP-9: daily incremental, weekly full (full backups: daily); others: the entity's 7 days


def c12(ev, std, ctx) -> ControlResult:
    if getattr(ctx, "rctx", None) is not None:
        missing = "fail" if std["id"] == "fedramp" else "warning"
        result = _from_check("C12", ctx, "backup_cadence", "restore_test", params={"max_gap_days": BACKUP_GAP_DAYS.get(std["id"], 7), "missing": missing})
        last = ev["audit"].get("last", {})
        backup, restore = last.get("backup:ok"), last.get("restore:ok")
        result.evidence.update({"last_backup": backup["timestamp"] if backup else None,
                                "last_verified_restore": restore["timestamp"] if restore else None,
                                "backups_recorded": ev["audit"].get("counts", {}).get("backup:ok", 0)})
        return result
    a = ev["audit"]
    last = a.get("last", {})
    backup, restore = last.get("backup:ok"), last.get("restore:ok")
    evidence = {"last_backup": backup["timestamp"] if backup else None, "last_verified_restore": restore["timestamp"] if restore else None,
                "backups_recorded": a.get("counts", {}).get("backup:ok", 0), "encryption": "backups are encrypted under a KEK (passphrase or X25519 recipient)"}
    if ev["vault"].get("external"):
        return ControlResult("C12", CONTROLS["C12"], "manual", "backups of the external provider are the provider's", evidence,
                             remediation="auditor: review the provider's backup and restore tests")
    findings = []
    status = "pass"
    if not backup:
        findings.append("no vault backup recorded in the audit log")
        status = "fail"
    elif (ctx.now - _parse(backup["timestamp"])).days > 7:
        findings.append(f"last backup {backup['timestamp']} is older than 7 days")
        status = "warning"
    if not restore or (ctx.now - _parse(restore["timestamp"])).days > 365:
        findings.append("no restore test in the last 12 months")
        status = _worst(status, "warning")
    return ControlResult("C12", CONTROLS["C12"], status, f"last backup {evidence['last_backup'] or 'never'}; last restore test {evidence['last_verified_restore'] or 'never'}",
                         evidence, findings, "schedule 'zerotrust-admin vault backup' and test 'vault restore' on a spare host" if findings else "")


def c13(ev, std, ctx) -> ControlResult:
    if getattr(ctx, "rctx", None) is not None:
        return _from_check("C13", ctx, "memory_protection")
    m = ev["memory"]
    evidence = {"core_dumps": "disabled" if m["core_limit"] == 0 else f"allowed (RLIMIT_CORE={m['core_limit']})",
                "process_dumpable": {0: "no", 1: "yes"}.get(m["dumpable"], "unknown"), "swap": ", ".join(m["swap_devices"]) or "none",
                "secret_wiping": "yes" if m["secret_wipe"] else "no", "mlock": "yes" if m["secret_mlock"] else "no"}
    findings = []
    status = "pass"
    if m["core_limit"] not in (0,):
        findings.append("core dumps are allowed for this process")
        status = "fail"
    if m["dumpable"] == 1:
        findings.append("the process is dumpable (ptrace/core)")
        status = _worst(status, "warning")
    if m["swap_devices"] and not m["secret_mlock"]:
        findings.append("swap is enabled and secrets are not locked in RAM")
        status = _worst(status, "warning")
    return ControlResult("C13", CONTROLS["C13"], status, "core dumps off, secrets wiped after use" if status == "pass" else "memory protection incomplete",
                         evidence, findings, "disable swap or use encrypted swap; keep the CLI entry point (it disables core dumps)" if findings else "")


CHECKS = [c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13]

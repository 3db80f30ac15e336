"""``revoke-credentials``: deny a user's already-issued STS sessions.

STS credentials cannot be recalled, but a role's own policy can deny them.
For each role, an inline policy (``aws.revocation_policy_name``, default
``ZeroTrustRevokedSessions``) holds, per revoked user, a pair of Deny-all
statements that differ only in how they recognise the user (IAM ANDs the
condition keys inside one statement, so "either key matches" needs two)::

    {"Sid": "ZtRevoke<h>S", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"DateLessThan": {"aws:TokenIssueTime": "<cut-off>"},
                   "StringEquals": {"aws:SourceIdentity": "<session name>"}}}
    {"Sid": "ZtRevoke<h>U", ... "StringLike": {"aws:userid": "*:<session name>"}}

SourceIdentity survives role chaining; ``aws:userid`` (``<role id>:<session
name>``) catches sessions issued without one. A new revocation of the same
user replaces its pair with the later cut-off; pairs whose cut-off is older
than the longest STS session (12 h) deny nothing any more and are pruned; the
document is kept under IAM's 10,240-character inline role-policy limit by
coalescing the oldest users into one pair with their latest cut-off (which
denies a little more, never less). ``--all-users`` puts the console's
``AWSRevokeOlderSessions`` policy instead (Deny * when TokenIssueTime is
before now). Moto stores these documents but does not evaluate DateLessThan,
so tests/test_aws_policy.py checks the documents themselves.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from zerotrust_admin.aws.names import parse_role_arn, session_name
from zerotrust_admin.aws.settings import MAX_DURATION, AwsSettings
from zerotrust_admin.errors import DeniedError, UsageError, ZeroTrustError

MAX_POLICY_CHARS = 10_240
SID_PREFIX = "ZtRevoke"
ALL_USERS_POLICY = "AWSRevokeOlderSessions"
VERSION = "2012-10-17"
EVENT = "credential_revocation"
LOCK_NAME = "revoke-credentials"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def cutoff_for(now: float) -> float:
    """Now, rounded up to the second: every session issued so far is before it."""
    return float(math.floor(now) + 1)


def compact(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _one_or_list(values: list[str]):
    return values[0] if len(values) == 1 else values


def _pair(names: list[str], cutoff: float) -> list[dict]:
    names = sorted(names)
    h = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:12]
    when = {"aws:TokenIssueTime": iso(cutoff)}
    base = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    return [
        {"Sid": f"{SID_PREFIX}{h}S", **base, "Condition": {"DateLessThan": when, "StringEquals": {"aws:SourceIdentity": _one_or_list(names)}}},
        {"Sid": f"{SID_PREFIX}{h}U", **base, "Condition": {"DateLessThan": when, "StringLike": {"aws:userid": _one_or_list([f"*:{n}" for n in names])}}},
    ]


def parse_revocations(doc: dict | None) -> tuple[dict[str, float], list[dict]]:
    """({session name: cut-off}, statements that are not ours) from a stored document."""
    cutoffs: dict[str, float] = {}
    foreign: list[dict] = []
    if not doc:
        return cutoffs, foreign
    statements = doc.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        sid = str(st.get("Sid", "")) if isinstance(st, dict) else ""
        if not sid.startswith(SID_PREFIX):
            foreign.append(st)
            continue
        if not sid.endswith("S"):
            continue  # the aws:userid twin is regenerated from the SourceIdentity one
        try:
            cond = st["Condition"]
            cutoff = parse_iso(cond["DateLessThan"]["aws:TokenIssueTime"])
            names = cond["StringEquals"]["aws:SourceIdentity"]
        except (KeyError, TypeError, ValueError):
            foreign.append(st)
            continue
        for name in [names] if isinstance(names, str) else list(names):
            cutoffs[name] = max(cutoff, cutoffs.get(name, 0.0))
    return cutoffs, foreign


def revocation_document(existing: dict | None, names: list[str], cutoff: float, now: float, *,
                        max_session: float = MAX_DURATION, limit: int = MAX_POLICY_CHARS) -> dict:
    """The merged, pruned, size-bounded policy denying ``names``' sessions issued before ``cutoff``."""
    cutoffs, foreign = parse_revocations(existing)
    for name in names:
        cutoffs[name] = max(cutoff, cutoffs.get(name, 0.0))
    # A session issued before (now - 12 h) has expired: such statements deny nothing.
    live = {n: c for n, c in cutoffs.items() if c > now - max_session}
    ordered = sorted(live.items(), key=lambda item: (item[1], item[0]))  # oldest cut-off first
    for grouped in range(0, len(ordered) + 1):
        if grouped == 1:
            continue  # a group of one is the same as no group
        statements = list(foreign)
        if grouped:
            group = ordered[:grouped]
            statements += _pair([n for n, _ in group], max(c for _, c in group))
        for name, c in ordered[grouped:]:
            statements += _pair([name], c)
        doc = {"Version": VERSION, "Statement": statements}
        if len(compact(doc)) <= limit:
            return doc
    raise ZeroTrustError(f"the revocation policy would exceed IAM's {limit}-character limit even with every user in one statement",
                         hint="revoke every session on the role instead: zerotrust-admin revoke-credentials --all-users")


def all_users_document(cutoff: float) -> dict:
    """The AWS console's "Revoke active sessions" policy."""
    return {"Version": VERSION, "Statement": [{"Effect": "Deny", "Action": ["*"], "Resource": ["*"],
                                                "Condition": {"DateLessThan": {"aws:TokenIssueTime": iso(cutoff)}}}]}


# --- applying it ---------------------------------------------------------------------
@dataclass
class RolePlan:
    role_arn: str
    policy_name: str
    document: dict
    ok: bool | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {"role_arn": self.role_arn, "policy_name": self.policy_name, "policy": self.document, "chars": len(compact(self.document)),
                "ok": self.ok, "error": self.error}


DONE, FAILED, NOT_ATTEMPTED, SKIPPED = "done", "failed", "not attempted", "skipped"


@dataclass
class Step:
    """One step of a revocation and what became of it (issue 14: a command of
    several steps reports each step's outcome, not only the first failure)."""

    name: str
    status: str = NOT_ATTEMPTED
    detail: str = ""
    role_arn: str | None = None

    def to_dict(self) -> dict:
        return {"step": self.name, "status": self.status, "detail": self.detail, **({"role_arn": self.role_arn} if self.role_arn else {})}


class PartialRevocationError(ZeroTrustError):
    """Some steps failed or were not attempted; ``report`` says which, and the
    hint is the command that finishes the rest (re-running is safe)."""

    def __init__(self, report: "CredentialRevocation", first: ZeroTrustError):
        counts = {st: sum(1 for x in report.steps if x.status == st) for st in (FAILED, NOT_ATTEMPTED, DONE)}
        parts = [f"{n} {st}" for st, n in counts.items() if n]
        super().__init__(f"revoke-credentials did not finish: {', '.join(parts)} of {len(report.steps)} steps",
                         hint=f"what is marked done stands; {first.hint + '; then ' if first.hint else ''}finish the rest with: "
                              f"{report.finish_command()} (docs/runbooks/incident-response.md, 'Finishing a partial revocation')")
        self.exit_code = first.exit_code
        self.report = report
        self.first = first
        self.audited = True

    @property
    def detail_lines(self) -> list[str]:
        """One line per step, for the operator (the hint follows them)."""
        width = max(len(st.status) for st in self.report.steps)
        return [f"{st.status.ljust(width)}  {st.name}" + (f": {st.detail}" if st.detail else "") for st in self.report.steps]


@dataclass
class CredentialRevocation:
    user: str | None
    all_users: bool
    cutoff: float
    dry_run: bool
    roles: list[RolePlan] = field(default_factory=list)
    session_name: str | None = None
    cache_purged: int | None = None
    sessions_revoked: int | None = None
    keep_sessions: bool = False
    reason: str | None = None
    errors: list[str] = field(default_factory=list)
    notifications: list = field(default_factory=list)
    first_error: object = field(default=None, repr=False)
    steps: list = field(default_factory=list)

    def finish_command(self) -> str:
        """The command that does what is left: the roles not done, and the
        sessions only if they were not revoked (every step is safe to repeat)."""
        import shlex

        argv = ["zerotrust-admin", "revoke-credentials"] + (["--all-users"] if self.all_users else ["--user", self.user or ""])
        for st in self.steps:
            if st.role_arn and st.status != DONE:
                argv += ["--role-arn", st.role_arn]
        sessions = [st for st in self.steps if st.name == "session revocation"]
        if sessions and sessions[0].status in (DONE, SKIPPED):
            argv.append("--keep-sessions")
        if self.reason:
            argv += ["--reason", self.reason]
        return " ".join(shlex.quote(a) for a in argv + ["--yes"])

    @property
    def complete(self) -> bool:
        return not self.errors

    @property
    def resource(self) -> str:
        return "credentials:all-users" if self.all_users else f"user:{self.user}"

    def to_dict(self) -> dict:
        return {"user": self.user, "all_users": self.all_users, "session_name": self.session_name, "cutoff": iso(self.cutoff),
                "dry_run": self.dry_run, "roles": [r.to_dict() for r in self.roles], "cache_purged": self.cache_purged,
                "sessions_revoked": self.sessions_revoked, "keep_sessions": self.keep_sessions, "reason": self.reason,
                "complete": self.complete, "errors": self.errors, "steps": [st.to_dict() for st in self.steps],
                **({} if self.complete or self.dry_run else {"finish_command": self.finish_command()}),
                "notifications": [n.to_dict() for n in self.notifications]}


def iam_client(settings: AwsSettings, config, session_factory=None):
    from zerotrust_admin.aws.sts import base_session, client

    return client(settings, (session_factory or base_session)(settings, config), "iam")


def _get_policy(iam, settings, role_name: str, policy_name: str) -> dict | None:
    from botocore.exceptions import ClientError

    from zerotrust_admin.aws.sts import call_with_retries

    def read():
        try:
            return iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchEntity", "NoSuchEntityException"):
                return None
            raise

    doc = call_with_retries(read, settings, f"GetRolePolicy on {role_name}", settings.endpoint_for("iam"))
    if isinstance(doc, str):  # boto3 decodes it; a raw URL-encoded string is possible from stand-ins
        from urllib.parse import unquote

        doc = json.loads(unquote(doc))
    return doc


def plan(settings: AwsSettings, iam, *, user: str | None, roles: list[str], all_users: bool, now: float) -> tuple[float, list[RolePlan]]:
    cutoff = cutoff_for(now)
    plans = []
    for arn in roles:
        role = parse_role_arn(arn)
        if all_users:
            plans.append(RolePlan(role.arn, ALL_USERS_POLICY, all_users_document(cutoff)))
            continue
        existing = _get_policy(iam, settings, role.name, settings.revocation_policy_name)
        plans.append(RolePlan(role.arn, settings.revocation_policy_name,
                              revocation_document(existing, [session_name(user)], cutoff, now)))
    return cutoff, plans


def _roles(settings: AwsSettings, role_arns) -> list[str]:
    roles = list(role_arns or settings.roles)
    if not roles:
        raise UsageError("no roles to revoke on", hint="pass --role-arn ARN (repeatable) or list the roles in aws.roles")
    allowed = settings.allowed()
    out = []
    for arn in roles:
        role = parse_role_arn(arn)
        if allowed is not None and role.account not in allowed:
            raise DeniedError(f"role {role.arn} is in account {role.account}, which is not in aws.allowed_accounts")
        if role.arn not in out:
            out.append(role.arn)
    return out


def revoke_credentials(rt, *, user: str | None, role_arns=None, all_users: bool = False, keep_sessions: bool = False,
                       dry_run: bool = False, reason: str | None = None, notify: bool | None = None,
                       clock=time.time, session_factory=None) -> CredentialRevocation:
    """Purge the cache, put the deny policies, revoke sessions; audit; notify.

    Each step runs even if an earlier one failed (a cache that is down must not
    stop the deny policies); the audit record lists what failed, and the first
    failure is raised after auditing. ``--dry-run`` reads the current policies
    and returns the documents it would put, changing nothing.
    """
    from zerotrust_admin.sessions import check_user

    if all_users == (user is not None):
        raise UsageError("give exactly one of --user U or --all-users")
    if user is not None:
        check_user(user)
    if reason is not None and (len(reason) > 500 or any(ord(c) < 32 for c in reason)):
        raise UsageError("--reason must be one line of at most 500 characters")
    actor = rt.actor
    resource = "credentials:all-users" if all_users else f"user:{user}"
    try:
        settings = AwsSettings.from_config(rt.config)
        roles = _roles(settings, role_arns)
        if dry_run:
            iam = iam_client(settings, rt.config, session_factory)
            cutoff, plans = plan(settings, iam, user=user, roles=roles, all_users=all_users, now=clock())
            return CredentialRevocation(user, all_users, cutoff, True, plans, session_name(user) if user else None,
                                        keep_sessions=keep_sessions, reason=reason)
        from zerotrust_admin.sessions.lock import distributed_lock

        with distributed_lock(rt.config, LOCK_NAME, ttl=60):
            report = _execute(rt, settings, lambda: iam_client(settings, rt.config, session_factory), user=user, roles=roles,
                              all_users=all_users, keep_sessions=keep_sessions, reason=reason, clock=clock)
    except ZeroTrustError as exc:
        if not dry_run and not getattr(exc, "audited", False):
            rt.audit.append(event=EVENT, action="revoke", resource=resource, success=False, actor=actor, error=exc.message,
                            **({"reason": reason} if reason else {}))
        raise
    from zerotrust_admin import notify as notify_mod

    if notify if notify is not None else notify_mod.enabled(rt.config):
        from zerotrust_admin.sessions.revoke import send_notification

        report.notifications = send_notification(rt.config, notification_for(report, actor), audit=rt.audit, actor=actor)
    if report.errors:
        raise PartialRevocationError(report, report.first_error)
    return report


def _execute(rt, settings, make_iam, *, user, roles, all_users, keep_sessions, reason, clock) -> CredentialRevocation:
    """Every step is tried even when an earlier one failed (a cache that is down
    must not stop the deny policies), except that once AWS itself is unreachable
    or unusable the remaining roles are not attempted (each would wait for the
    same timeout); each step's outcome is in ``report.steps`` and the audit record."""
    from zerotrust_admin.aws.cache import NAMESPACE, purge_user
    from zerotrust_admin.aws.sts import call_with_retries
    from zerotrust_admin.errors import ConfigError, UnavailableError

    first_error: list[ZeroTrustError] = []
    report = CredentialRevocation(user, all_users, cutoff_for(clock()), False, session_name=session_name(user) if user else None,
                                  keep_sessions=keep_sessions, reason=reason)

    def failed(step: Step, exc: ZeroTrustError) -> None:
        step.status, step.detail = FAILED, exc.message
        report.errors.append(f"{step.name}: {exc.message}")
        if not first_error:
            first_error.append(exc)

    cache = Step("cache purge")
    policies = [Step(f"deny policy on {arn}", role_arn=arn) for arn in roles]
    sessions = Step("session revocation")
    report.steps = [cache, *policies, sessions]
    store = None
    # (a) the cache: nothing cached for the user may be served from now on.
    try:
        store = rt.session_store()
        report.cache_purged = store.cache_delete_prefix(NAMESPACE, "") if all_users else purge_user(store, user)
        cache.status, cache.detail = DONE, f"{report.cache_purged} cached credential(s) purged"
    except ZeroTrustError as exc:
        failed(cache, exc)
    # (b) the deny policies, read-modify-write under the lock, role by role.
    plans: list[RolePlan] = []
    aws_down: str | None = None
    iam = None
    for arn, step in zip(roles, policies):
        if aws_down is not None:
            step.detail = aws_down
            continue
        role = parse_role_arn(arn)
        try:
            if iam is None:
                iam = _translated(make_iam, settings)
            if all_users:
                p = RolePlan(role.arn, ALL_USERS_POLICY, all_users_document(report.cutoff))
            else:
                existing = _get_policy(iam, settings, role.name, settings.revocation_policy_name)
                p = RolePlan(role.arn, settings.revocation_policy_name,
                             revocation_document(existing, [session_name(user)], report.cutoff, clock()))
            plans.append(p)
            call_with_retries(lambda: iam.put_role_policy(RoleName=role.name, PolicyName=p.policy_name, PolicyDocument=compact(p.document)),
                              settings, f"PutRolePolicy on {role.name}", settings.endpoint_for("iam"))
            p.ok = True
            step.status, step.detail = DONE, f"{p.policy_name} denies sessions issued before {iso(report.cutoff)}"
        except ZeroTrustError as exc:
            if plans and plans[-1].role_arn == role.arn:
                plans[-1].ok, plans[-1].error = False, exc.message
            else:
                plans.append(RolePlan(role.arn, ALL_USERS_POLICY if all_users else settings.revocation_policy_name, {}, False, exc.message))
            failed(step, exc)
            if isinstance(exc, (UnavailableError, ConfigError)):
                aws_down = "AWS was unreachable or not configured for an earlier role"
    report.roles = plans
    # (c) the sessions.
    if keep_sessions:
        sessions.status, sessions.detail = SKIPPED, "--keep-sessions"
    elif store is None:
        sessions.detail = "the session store could not be opened (see cache purge)"
    else:
        from zerotrust_admin.sessions.revoke import Target, revoke_sessions

        try:
            sreport = revoke_sessions(store, Target("all") if all_users else Target("user", user), config=rt.config, audit=rt.audit,
                                      actor=rt.actor, reason=reason, notify=False, missing_ok=True)
            report.sessions_revoked = sreport.revoked
            sessions.status, sessions.detail = DONE, f"{sreport.revoked} session(s) revoked"
        except ZeroTrustError as exc:
            failed(sessions, exc)
    # (d) the evidence: the same steps and outcomes the operator sees.
    rt.audit.append(event=EVENT, action="revoke", resource=report.resource, success=report.complete, actor=rt.actor,
                    **({"level": "warning"} if not report.complete else {}),
                    roles=[p.role_arn for p in plans if p.ok], failed_roles=[p.role_arn for p in plans if p.ok is False],
                    not_attempted_roles=[st.role_arn for st in policies if st.status == NOT_ATTEMPTED],
                    policy_name=ALL_USERS_POLICY if all_users else settings.revocation_policy_name, cutoff=iso(report.cutoff),
                    session_name=report.session_name, cache_purged=report.cache_purged, sessions_revoked=report.sessions_revoked,
                    keep_sessions=keep_sessions, complete=report.complete, errors=report.errors,
                    steps=[st.to_dict() for st in report.steps], **({"reason": reason} if reason else {}))
    report.first_error = first_error[0] if first_error else None
    return report


def _translated(make_iam, settings):
    try:
        return make_iam()
    except ZeroTrustError:
        raise
    except Exception as exc:  # e.g. botocore's ProfileNotFound, raised when the session is built
        from zerotrust_admin.aws.sts import translate

        mapped = translate(exc, "creating the IAM client", settings.endpoint_for("iam"))
        if mapped is None:
            raise
        raise mapped from None


def notification_for(report: CredentialRevocation, actor):
    from zerotrust_admin.notify import Notification

    who = "ALL users" if report.all_users else report.user
    title = f"ZeroTrust: AWS credentials of {who} revoked"
    ok_roles = [r.role_arn for r in report.roles if r.ok]
    summary = (f"{actor.user} revoked the AWS credentials of {who} from {actor.source_ip}: sessions issued before "
               f"{iso(report.cutoff)} are denied on {len(ok_roles)} role(s).")
    if report.reason:
        summary += f"\nReason: {report.reason}"
    details = {"target": who, "cutoff": iso(report.cutoff), "roles": ", ".join(ok_roles) or "-", "operator": actor.user,
               "cache_purged": report.cache_purged, "sessions_revoked": report.sessions_revoked}
    if report.reason:
        details["reason"] = report.reason
    return Notification(event=EVENT, title=title, summary=summary, severity="critical", details=details)

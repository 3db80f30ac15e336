"""credentials get / revoke-credentials against a real moto server on loopback.

What moto does not enforce (ExternalId, SourceIdentity, session policy and tags
actually sent) is checked on the wire through a recording proxy in front of it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timezone

import pytest

from tests.aws_helpers import RecordingProxy, aws_env, audit_records, base_aws, role_arn, write_config
from tests.servers import http_capture, moto_private, moto_server  # noqa: F401  (fixtures)
from zerotrust_admin.aws.names import session_name

ALICE = "alice@EXAMPLE.COM"
SVC = "HTTP/web1.example.com@EXAMPLE.COM"


@pytest.fixture
def aws(tmp_path, zt_env, moto_server, cli):
    """Writes a config for the moto server and runs the CLI with it."""

    class Aws:
        moto = moto_server
        home = tmp_path / "home"
        cfg = tmp_path / "cfg" / "config.yaml"

        def configure(self, endpoint=None, **extra):
            write_config(self.cfg, base_aws(endpoint or moto_server.endpoint_url, **extra))

        def run(self, *args, principal=ALICE, env=None, timeout=60):
            full = {"ZEROTRUST_CONFIG": str(self.cfg), "ZEROTRUST_PRINCIPAL": principal, **aws_env(moto_server), **(env or {})}
            return cli(*args, env=full, timeout=timeout)

        def get(self, arn, *extra, fmt="process", **kw):
            return self.run("credentials", "get", "--role-arn", arn, "--format", fmt, *extra, **kw)

        def audit(self, event="credential_issue"):
            return [r for r in audit_records(self.home) if r["event"] == event]

    a = Aws()
    a.configure()
    return a


@pytest.fixture
def initialized_aws(aws, cli):
    assert aws.run("init").code == 0
    return aws


def caller(moto, doc: dict) -> dict:
    import boto3

    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto.endpoint_url, aws_access_key_id=doc["AccessKeyId"],
                       aws_secret_access_key=doc["SecretAccessKey"], aws_session_token=doc["SessionToken"])
    return sts.get_caller_identity()


def expires_in(doc: dict) -> float:
    exp = datetime.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return exp.timestamp() - time.time()


# --- issuing ----------------------------------------------------------------------
def test_process_format_issues_working_credentials_for_the_principal(aws):
    r = aws.get(role_arn("Deploy"), principal=SVC)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["Version"] == 1 and set(doc) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert 3500 < expires_in(doc) <= 3600  # default: 1 hour
    who = caller(aws.moto, doc)
    assert who["Arn"] == f"arn:aws:sts::123456789012:assumed-role/Deploy/{session_name(SVC)}"
    assert "/" not in session_name(SVC)


def test_env_and_json_formats(aws):
    env = aws.get(role_arn("Deploy"), "--no-cache", fmt="env")
    assert env.code == 0, env.err
    lines = dict(line.removeprefix("export ").split("=", 1) for line in env.text.splitlines())
    assert set(lines) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"}
    js = aws.get(role_arn("Deploy"), "--no-cache", fmt="json")
    doc = json.loads(js.out)
    assert doc["role_arn"] == role_arn("Deploy") and doc["session_name"] == ALICE and doc["secret_access_key"]


def test_duration_flag_and_bounds(aws):
    r = aws.get(role_arn("Deploy"), "--duration", "900", "--no-cache")
    assert r.code == 0, r.err
    assert 800 < expires_in(json.loads(r.out)) <= 900
    for bad in ("899", "43201", "0"):
        r = aws.get(role_arn("Deploy"), "--duration", bad)
        assert r.code == 2 and "out of range" in r.err and r.out == b""


@pytest.mark.parametrize("arn", ["arn:aws:iam::123:role/x", "arn:aws:iam::123456789012:user/bob", "Deploy", "arn:aws:s3:::b"])
def test_malformed_arn_is_exit_2(aws, arn):
    r = aws.get(arn)
    assert r.code == 2 and "not an IAM role ARN" in r.err
    assert r.err.count("error:") == 1


def test_account_allow_list_is_checked_before_any_call(aws):
    # The endpoint is a closed port: reaching AWS would be exit 6, the refusal is exit 4.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    aws.configure(endpoint=closed, allowed_accounts=["123456789012"])
    r = aws.get(role_arn("Deploy", account="210987654321"))
    assert r.code == 4 and "allowed_accounts" in r.err
    r = aws.get(role_arn("Deploy"), "--via", role_arn("Hop", account="210987654321"))
    assert r.code == 4
    fails = aws.audit()
    assert fails and all(not rec["success"] for rec in fails)


def test_role_chaining_uses_each_hop_and_is_capped_at_one_hour(aws):
    aws.configure(duration_seconds=7200)
    r = aws.get(role_arn("Target"), "--via", role_arn("Hop1"), "--via", role_arn("Hop2"), "--no-cache")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert expires_in(doc) <= 3600  # the 2 h default is capped for a chain
    assert caller(aws.moto, doc)["Arn"].endswith(f"assumed-role/Target/{ALICE}")
    r = aws.get(role_arn("Target"), "--via", role_arn("Hop1"), "--duration", "7200")
    assert r.code == 2 and "chain" in r.err


def test_what_is_sent_on_the_wire(aws, moto_server):
    proxy = RecordingProxy(moto_server.endpoint_url)
    try:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
        aws.configure(endpoint=proxy.url, session_policy=policy, session_tags={"team": "ops"},
                      role_config={role_arn("Partner", "210987654321"): {"external_id": "partner-ext-1"}},
                      allowed_accounts=["123456789012", "210987654321"])
        assert aws.get(role_arn("Partner", "210987654321"), "--no-cache", principal=SVC).code == 0
        call, = proxy.assume_calls()
        assert call["RoleSessionName"] == call["SourceIdentity"] == session_name(SVC)
        assert call["ExternalId"] == "partner-ext-1"
        assert json.loads(call["Policy"]) == policy
        assert (call["Tags.member.1.Key"], call["Tags.member.1.Value"]) == ("team", "ops")
        assert call["DurationSeconds"] == "3600"
        proxy.requests.clear()
        assert aws.get(role_arn("Partner", "210987654321"), "--external-id", "flag-ext-2", "--no-cache").code == 0
        assert proxy.assume_calls()[0]["ExternalId"] == "flag-ext-2"
        proxy.requests.clear()
        # chaining: SourceIdentity is set on the first hop and persists; the policy applies to the target
        assert aws.get(role_arn("Target"), "--via", role_arn("Hop"), "--no-cache").code == 0
        hop, target = proxy.assume_calls()
        assert hop["RoleArn"] == role_arn("Hop") and hop["SourceIdentity"] == ALICE and "Policy" not in hop
        assert target["RoleArn"] == role_arn("Target") and "Policy" in target and "SourceIdentity" not in target
    finally:
        proxy.stop()


def test_throttling_is_retried_a_bounded_number_of_times(aws, moto_server):
    proxy = RecordingProxy(moto_server.endpoint_url, throttle=2)
    try:
        aws.configure(endpoint=proxy.url, max_attempts=3)
        r = aws.get(role_arn("Deploy"), "--no-cache")
        assert r.code == 0, r.err
        assert len(proxy.assume_calls()) == 3
        proxy.requests.clear()
        proxy.throttle = 100
        r = aws.get(role_arn("Deploy"), "--no-cache")
        assert r.code == 6 and "Throttling" in r.err and "3 attempt" in r.err
        assert len(proxy.assume_calls()) == 3
    finally:
        proxy.stop()


def test_unreachable_endpoint_is_exit_6_within_the_timeout(aws):
    # A listener that accepts and never answers: the read timeout must fire.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        aws.configure(endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}", read_timeout=1, connect_timeout=1)
        start = time.monotonic()
        r = aws.get(role_arn("Deploy"), "--no-cache")
        assert r.code == 6 and "timeout" in r.err
        assert time.monotonic() - start < 15
        port = silent.getsockname()[1]
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        silent.close()
    aws.configure(endpoint=f"http://127.0.0.1:{port}")  # now closed: connection refused
    r = aws.get(role_arn("Deploy"), "--no-cache")
    assert r.code == 6 and "unreachable" in r.err


def test_access_denied_is_exit_4(aws, moto_private):
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_private.endpoint_url}/moto-api/reset-auth", data=b"0",
                                                  headers={"Content-Type": "text/plain"}, method="POST"), timeout=10).read()
    aws.configure(endpoint=moto_private.endpoint_url)
    r = aws.get(role_arn("Deploy"), "--no-cache")  # moto no longer knows our access key
    assert r.code == 4 and "AWS refused" in r.err
    assert r.err.count("\n") <= 2  # one line plus a hint


def test_environment_provider_without_keys_is_a_usage_error(aws):
    r = aws.run("credentials", "get", "--role-arn", role_arn("Deploy"), env={"ZEROTRUST_AWS_ACCESS_KEY": "", "ZEROTRUST_AWS_SECRET_KEY": ""})
    assert r.code == 2 and "ZEROTRUST_AWS_ACCESS_KEY" in r.err


def test_per_service_endpoint_override(aws, moto_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    aws.configure(endpoint=closed, endpoints={"sts": moto_server.endpoint_url})
    assert aws.get(role_arn("Deploy"), "--no-cache").code == 0


# --- the cache through the CLI ---------------------------------------------------------
def test_second_call_is_served_from_the_encrypted_cache_and_audited(initialized_aws):
    aws = initialized_aws
    first = aws.get(role_arn("Deploy"))
    second = aws.get(role_arn("Deploy"))
    assert first.code == second.code == 0
    assert json.loads(first.out) == json.loads(second.out)
    fresh = aws.get(role_arn("Deploy"), "--no-cache")
    assert json.loads(fresh.out)["AccessKeyId"] != json.loads(first.out)["AccessKeyId"]
    issued = [r for r in aws.audit() if r["action"] == "issue"]
    assert [r["details"]["source"] for r in issued] == ["sts", "cache", "sts"]
    assert issued[0]["details"]["cached"] is True and issued[2]["details"]["cached"] is False
    log = (aws.home / "audit.log").read_text()
    for doc in (json.loads(first.out), json.loads(fresh.out)):
        assert doc["SecretAccessKey"] not in log and doc["SessionToken"] not in log
    # nothing of the credentials is stored in clear text in the session store
    raw = (aws.home / "sessions.db").read_bytes() + b"".join(p.read_bytes() for p in aws.home.glob("sessions.db-wal"))
    assert json.loads(first.out)["SecretAccessKey"].encode() not in raw
    assert json.loads(first.out)["AccessKeyId"].encode() not in raw


def test_a_failed_issue_caches_nothing(initialized_aws):
    aws = initialized_aws
    aws.configure(endpoint="http://127.0.0.1:9")  # discard port: refused
    assert aws.get(role_arn("Deploy")).code == 6
    aws.configure()
    aws.get(role_arn("Deploy"))
    assert [r["details"]["source"] for r in aws.audit() if r["success"]] == ["sts"]


def test_other_users_never_get_each_others_cached_credentials(initialized_aws):
    aws = initialized_aws
    a = json.loads(aws.get(role_arn("Deploy"), principal=ALICE).out)
    b = json.loads(aws.get(role_arn("Deploy"), principal="bob@EXAMPLE.COM").out)
    assert a["AccessKeyId"] != b["AccessKeyId"]
    assert caller(aws.moto, b)["Arn"].endswith("/bob@EXAMPLE.COM")


# --- revoke-credentials ------------------------------------------------------------------
@pytest.fixture
def roles(moto_server):
    import uuid

    iam = moto_server.client("iam")
    names = [f"Ops{uuid.uuid4().hex[:8]}", f"Ro{uuid.uuid4().hex[:8]}"]
    for n in names:
        iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    return [role_arn(n) for n in names], iam


def put_policy(iam, arn, name):
    return iam.get_role_policy(RoleName=arn.rsplit("/", 1)[1], PolicyName=name)["PolicyDocument"]


def test_revoke_credentials_end_to_end(initialized_aws, roles):
    aws = initialized_aws
    arns, iam = roles
    aws.configure(roles=arns)
    svc_creds = json.loads(aws.get(arns[0], principal=SVC).out)
    alice_creds = json.loads(aws.get(arns[0], principal=ALICE).out)
    from zerotrust_admin.sessions import make_session
    from zerotrust_admin.sessions.sqlite_store import SQLiteSessionStore

    store = SQLiteSessionStore(aws.home / "sessions.db")
    store.put(make_session(SVC, 3600))
    store.close()

    dry = aws.run("revoke-credentials", "--user", SVC, "--dry-run")
    assert dry.code == 0, dry.err
    planned = [json.loads(line) for line in dry.text.splitlines()]
    assert len(planned) == 2
    with pytest.raises(Exception):
        put_policy(iam, arns[0], "ZeroTrustRevokedSessions")  # a dry run puts nothing

    r = aws.run("revoke-credentials", "--user", SVC, "--yes", "--reason", "laptop stolen", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["cache_purged"] == 1 and report["sessions_revoked"] == 1 and report["complete"]
    for arn in arns:
        doc = put_policy(iam, arn, "ZeroTrustRevokedSessions")
        si = [s for s in doc["Statement"] if "StringEquals" in s["Condition"]]
        assert si[0]["Condition"]["StringEquals"]["aws:SourceIdentity"] == session_name(SVC)
        assert si[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == report["cutoff"]
    # the revoked user's next call goes to STS; alice's cache entry is untouched
    assert json.loads(aws.get(arns[0], principal=SVC).out)["AccessKeyId"] != svc_creds["AccessKeyId"]
    assert json.loads(aws.get(arns[0], principal=ALICE).out)["AccessKeyId"] == alice_creds["AccessKeyId"]
    # a second revocation merges into the same document
    assert aws.run("revoke-credentials", "--user", ALICE, "--yes", "--keep-sessions").code == 0
    doc = put_policy(iam, arns[1], "ZeroTrustRevokedSessions")
    idents = {s["Condition"]["StringEquals"]["aws:SourceIdentity"] for s in doc["Statement"] if "StringEquals" in s["Condition"]}
    assert idents == {session_name(SVC), ALICE}
    recs = aws.audit("credential_revocation")
    assert [r["success"] for r in recs] == [True, True]
    assert recs[0]["details"]["reason"] == "laptop stolen" and recs[0]["resource"] == f"user:{SVC}"
    assert recs[1]["details"]["keep_sessions"] is True


def test_revoke_all_users_puts_the_console_policy(initialized_aws, roles):
    aws = initialized_aws
    arns, iam = roles
    r = aws.run("revoke-credentials", "--all-users", "--role-arn", arns[1], "--yes", "--keep-sessions")
    assert r.code == 0, r.err
    doc = put_policy(iam, arns[1], "AWSRevokeOlderSessions")
    assert doc["Statement"][0]["Condition"].keys() == {"DateLessThan"}
    assert doc["Statement"][0]["Effect"] == "Deny"


def test_revoke_needs_yes_without_a_terminal_and_a_real_role(initialized_aws, roles):
    aws = initialized_aws
    arns, _ = roles
    r = aws.run("revoke-credentials", "--user", ALICE, "--role-arn", arns[0])
    assert r.code == 2 and "--yes" in r.err
    r = aws.run("revoke-credentials", "--user", ALICE, "--role-arn", role_arn("DoesNotExist"), "--yes", "--keep-sessions")
    assert r.code == 3
    rec = aws.audit("credential_revocation")[-1]
    assert rec["success"] is False and rec["details"]["failed_roles"] == [role_arn("DoesNotExist")]
    r = aws.run("revoke-credentials", "--user", ALICE, "--yes")
    assert r.code == 2 and "aws.roles" in r.err  # no roles anywhere


def test_revoke_credentials_notifies_like_revoke_sessions(initialized_aws, roles, http_capture, tmp_path):
    import os

    aws = initialized_aws
    arns, _ = roles
    hook = http_capture()
    key_file = tmp_path / "hook.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"hook-signing-key-" + os.urandom(8).hex().encode())
    os.close(fd)
    write_config(aws.cfg, base_aws(aws.moto.endpoint_url, roles=arns[:1]),
                 security={"breach_notification": {"enabled": True, "retries": 0,
                                                   "channels": [{"webhook": {"url": hook.url("/hooks/zt"), "secret_file": str(key_file)}}]}})
    r = aws.run("revoke-credentials", "--user", ALICE, "--yes", "--keep-sessions", "--reason", "offboarding")
    assert r.code == 0, r.err
    assert len(hook.requests) == 1
    body = hook.requests[0]["body"].decode()
    assert "credential_revocation" in body and ALICE in body and "offboarding" in body
    assert aws.run("revoke-credentials", "--user", ALICE, "--yes", "--keep-sessions", "--no-notify").code == 0
    assert len(hook.requests) == 1


def test_a_vault_that_cannot_be_unlocked_here_means_uncached_not_failed(aws):
    phrase = {"ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    assert aws.run("init", "--passphrase", env=phrase).code == 0
    r = aws.get(role_arn("Deploy"))  # credential_process has no terminal to ask for the passphrase
    assert r.code == 0 and json.loads(r.out)["Version"] == 1
    assert "not cached" in r.err and "passphrase" in r.err
    first = json.loads(aws.get(role_arn("Deploy"), env=phrase).out)
    assert json.loads(aws.get(role_arn("Deploy"), env=phrase).out) == first
    assert [x["details"]["source"] for x in aws.audit() if x["success"]] == ["sts", "sts", "cache"]

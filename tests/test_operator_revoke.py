"""Issue 14, item 2: revoke-credentials reports each step's outcome on failure
(done / failed / not attempted), in text and JSON and in the audit record, and
its hint is a command that finishes the rest. AWS is a real moto server on
loopback; "unreachable" is a closed loopback port, "unconfigured" no keys."""

from __future__ import annotations

import json
import shlex
import socket
import uuid

import pytest

from tests.aws_helpers import audit_records, base_aws, role_arn, write_config
from tests.servers import moto_server  # noqa: F401  (fixture)

ALICE = "alice@EXAMPLE.COM"


@pytest.fixture
def setup(tmp_path, zt_env, moto_server, cli):  # noqa: F811
    iam = moto_server.client("iam")
    names = [f"Ops{uuid.uuid4().hex[:8]}", f"Ro{uuid.uuid4().hex[:8]}"]
    for n in names:
        iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    arns = [role_arn(n) for n in names]
    cfg = tmp_path / "cfg" / "config.yaml"
    keys = {"ZEROTRUST_AWS_ACCESS_KEY": moto_server.KEY_ID, "ZEROTRUST_AWS_SECRET_KEY": moto_server.SECRET}

    def configure(endpoint):
        write_config(cfg, base_aws(endpoint, roles=arns, connect_timeout=1, read_timeout=1))

    def run(*args, env=None):
        return cli(*args, env={"ZEROTRUST_CONFIG": str(cfg), **keys, **(env or {})})

    configure(moto_server.endpoint_url)
    assert run("init").code == 0
    assert run("sessions", "create", "--user", ALICE).code == 0
    return {"arns": arns, "iam": iam, "configure": configure, "run": run, "home": tmp_path / "home", "moto": moto_server}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_revocation(home):
    return [r for r in audit_records(home) if r["event"] == "credential_revocation"][-1]


def check_steps(steps, arns):
    by_name = {s["step"]: s["status"] for s in steps}
    assert by_name == {"cache purge": "done", f"deny policy on {arns[0]}": "failed",
                       f"deny policy on {arns[1]}": "not attempted", "session revocation": "done"}, steps


def test_unconfigured_aws_reports_every_step_in_text_and_audit(setup):
    s = setup
    assert len(json.loads(s["run"]("sessions", "list", "--json").text)) == 1
    r = s["run"]("revoke-credentials", "--user", ALICE, "--yes", "--reason", "INC-1 phished",
                 env={"ZEROTRUST_AWS_ACCESS_KEY": "", "ZEROTRUST_AWS_SECRET_KEY": ""})
    assert r.code == 2, r.err
    lines = r.err.splitlines()
    assert lines[0].startswith("zerotrust-admin: error: revoke-credentials did not finish: 1 failed, 1 not attempted, 2 done of 4 steps")
    text = "\n".join(lines)
    assert "done           cache purge: 0 cached credential(s) purged" in text
    assert f"failed         deny policy on {s['arns'][0]}: aws.credentials_provider is 'environment'" in text
    assert f"not attempted  deny policy on {s['arns'][1]}" in text
    assert "done           session revocation: 1 session(s) revoked" in text
    hint = lines[-1]
    assert hint.startswith("  hint: what is marked done stands") and "Finishing a partial revocation" in hint
    rec = last_revocation(s["home"])
    assert rec["success"] is False
    check_steps(rec["details"]["steps"], s["arns"])
    assert rec["details"]["not_attempted_roles"] == [s["arns"][1]]
    # sessions really were revoked, so the finishing command keeps them
    assert json.loads(s["run"]("sessions", "list", "--json").text) == []

    # the hint's command, run as written once AWS is configured, finishes the job
    finish = shlex.split(hint.split("finish the rest with: ", 1)[1].split(" (docs/runbooks", 1)[0])
    assert finish[:2] == ["zerotrust-admin", "revoke-credentials"] and "--keep-sessions" in finish
    assert [finish[i + 1] for i, a in enumerate(finish) if a == "--role-arn"] == s["arns"]
    done = s["run"](*finish[1:])
    assert done.code == 0, done.err
    for arn in s["arns"]:
        s["iam"].get_role_policy(RoleName=arn.rsplit("/", 1)[1], PolicyName="ZeroTrustRevokedSessions")
    assert last_revocation(s["home"])["success"] is True


def test_unreachable_aws_reports_every_step_in_json(setup):
    s = setup
    s["configure"](f"http://127.0.0.1:{closed_port()}")
    r = s["run"]("revoke-credentials", "--user", ALICE, "--yes", "--json")
    assert r.code == 6, r.err
    report = json.loads(r.text)
    assert report["complete"] is False
    check_steps(report["steps"], s["arns"])
    assert "unreachable" in [x for x in report["steps"] if x["status"] == "failed"][0]["detail"]
    assert report["finish_command"].endswith("--keep-sessions --yes")
    check_steps(last_revocation(s["home"])["details"]["steps"], s["arns"])


def test_a_complete_revocation_lists_its_steps_as_done(setup):
    r = setup["run"]("revoke-credentials", "--user", ALICE, "--yes", "--json", "--keep-sessions")
    assert r.code == 0, r.err
    report = json.loads(r.text)
    assert [x["status"] for x in report["steps"]] == ["done", "done", "done", "skipped"]
    assert "finish_command" not in report

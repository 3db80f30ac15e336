"""Breach notifications against real loopback listeners: aiosmtpd (STARTTLS +
AUTH), and HTTP servers standing in for Slack, PagerDuty and a signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.conftest import write_user_config
from tests.servers import http_capture, smtp_server  # noqa: F401
from tests.test_revoke import ALICE, audit_records, open_store, seed
from zerotrust_admin.errors import ConfigError
from zerotrust_admin.notify.base import check_endpoint


def secret_file(directory: Path, name: str, value: str) -> str:
    path = directory / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def channels(tmp_path, zt_env, http_capture, smtp_server):
    """All four channels configured against loopback; returns the listeners and secrets."""
    sec = tmp_path / "secrets"
    sec.mkdir()
    slack, pd, hook = http_capture(), http_capture((202,)), http_capture()
    slack_path = "/services/T0/B0/" + "s3cr3tslackpath"
    pd_key = "pdkey" + "0123456789abcdef"
    hook_key = "hook-signing-key-" + "x" * 16
    block = {
        "enabled": True, "retries": 2, "timeout_seconds": 2, "backoff_seconds": 0.05,
        "channels": [
            {"email": {"recipients": ["sec@example.com", "oncall@example.com"], "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                       "sender": "zerotrust@example.com", "starttls": True, "username": smtp_server.user,
                       "password_file": secret_file(sec, "smtp.pass", smtp_server.password), "ca_file": str(smtp_server.cert)}},
            {"slack": {"webhook_url_file": secret_file(sec, "slack.url", slack.url(slack_path))}},
            {"pagerduty": {"integration_key_file": secret_file(sec, "pd.key", pd_key), "events_url": pd.url("/v2/enqueue")}},
            {"webhook": {"url": hook.url("/hooks/zt"), "secret_file": secret_file(sec, "hook.key", hook_key)}},
        ],
    }

    def configure(**overrides):
        b = json.loads(json.dumps(block))
        b.update(overrides)
        write_user_config(zt_env, {"security": {"breach_notification": b}})

    configure()
    return {"slack": slack, "pd": pd, "hook": hook, "smtp": smtp_server, "slack_path": slack_path, "pd_key": pd_key, "hook_key": hook_key,
            "configure": configure, "block": block}


def verify_signature(request: dict, key: str) -> dict:
    ts = request["headers"]["x-zerotrust-timestamp"]
    expected = "v1=" + hmac.new(key.encode(), ts.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["x-zerotrust-signature"], expected)
    assert abs(time.time() - int(ts)) < 60
    return json.loads(request["body"])


def test_notify_test_all_channels(cli, zt_env, channels):
    r = cli("notify", "test", "--json")
    assert r.code == 0, r.err
    results = json.loads(r.out)
    assert {x["channel"]: x["ok"] for x in results} == {"email": True, "slack": True, "pagerduty": True, "webhook": True}

    (slack_req,) = channels["slack"].requests
    assert slack_req["path"] == channels["slack_path"]
    assert "test notification" in json.loads(slack_req["body"])["text"]

    (pd_req,) = channels["pd"].requests
    pd = json.loads(pd_req["body"])
    assert pd["routing_key"] == channels["pd_key"] and pd["event_action"] == "trigger"
    assert pd["payload"]["severity"] == "info" and pd["payload"]["source"] and pd["payload"]["summary"]

    (hook_req,) = channels["hook"].requests
    body = verify_signature(hook_req, channels["hook_key"])
    assert body["event"] == "notify_test"
    tampered = dict(hook_req, body=hook_req["body"].replace(b"notify_test", b"notify_tesT"))
    with pytest.raises(AssertionError):
        verify_signature(tampered, channels["hook_key"])

    smtp = channels["smtp"]
    assert smtp.logins == [smtp.user]  # AUTH happened (only possible after STARTTLS)
    (mail_from, rcpts, raw), = smtp.messages
    assert mail_from == "zerotrust@example.com" and sorted(rcpts) == ["oncall@example.com", "sec@example.com"]
    assert "test notification" in message_from_bytes(raw)["Subject"]

    notes = [rec for rec in audit_records(zt_env) if rec["event"] == "notification"]
    assert sorted(n["resource"] for n in notes) == ["channel:email", "channel:pagerduty", "channel:slack", "channel:webhook"]
    assert all(n["success"] for n in notes)
    log_text = (Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").read_text()
    for secret in (channels["slack_path"], channels["pd_key"], channels["hook_key"], smtp.password):
        assert secret not in log_text and secret not in r.err and secret not in r.text


def test_notify_test_one_channel(cli, channels):
    r = cli("notify", "test", "--channel", "slack")
    assert r.code == 0, r.err
    assert len(channels["slack"].requests) == 1 and not channels["pd"].requests and not channels["smtp"].messages
    assert cli("notify", "test", "--channel", "carrier-pigeon").code == 3


def test_notify_channels_lists_without_secrets(cli, channels):
    r = cli("notify", "channels", "--json")
    assert r.code == 0, r.err
    listed = json.loads(r.out)
    assert [c["kind"] for c in listed["channels"]] == ["email", "slack", "pagerduty", "webhook"]
    assert channels["slack_path"] not in r.text


def test_revocation_notifies_every_channel(cli, zt_env, channels):
    seed(zt_env, {ALICE: 3})
    r = cli("revoke-sessions", "--user", ALICE, "--yes", "--reason", "phished", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["revoked"] == 3 and all(n["ok"] for n in report["notifications"])
    slack_text = json.loads(channels["slack"].requests[0]["body"])["text"]
    assert ALICE in slack_text and "(3)" in slack_text
    pd = json.loads(channels["pd"].requests[0]["body"])
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["custom_details"]["reason"] == "phished"
    body = verify_signature(channels["hook"].requests[0], channels["hook_key"])
    assert body["event"] == "session_revocation" and body["details"]["revoked"] == 3
    assert ALICE in message_from_bytes(channels["smtp"].messages[0][2])["Subject"]


def test_no_notify_flag(cli, zt_env, channels):
    seed(zt_env, {ALICE: 1})
    assert cli("revoke-sessions", "--user", ALICE, "--yes", "--no-notify").code == 0
    assert not channels["slack"].requests and not channels["smtp"].messages


def test_slack_500_never_blocks_the_revocation(cli, zt_env, channels, http_capture):
    broken = http_capture((500,))
    channels["configure"](channels=[{"slack": {"webhook_url": broken.url("/services/x")}}, channels["block"]["channels"][3]])
    seed(zt_env, {ALICE: 2})
    r = cli("revoke-sessions", "--user", ALICE, "--yes")
    assert r.code == 0, r.err
    assert "Revoked 2 session(s)" in r.text
    assert "warning: notification via slack failed after 3 attempt(s): slack webhook answered HTTP 500; the revocation stands" in r.err
    assert len(broken.requests) == 3  # 1 + retries
    assert len(channels["hook"].requests) == 1  # the other channel still delivered
    assert open_store(zt_env).count(ALICE) == 0
    recs = audit_records(zt_env)
    assert any(x["event"] == "session_revocation" and x["success"] for x in recs)
    failed = [x for x in recs if x["event"] == "notification" and not x["success"]]
    assert failed[-1]["resource"] == "channel:slack" and failed[-1]["details"]["attempts"] == 3
    # --strict-notify: same revocation, exit 6
    seed(zt_env, {ALICE: 1})
    r = cli("revoke-sessions", "--user", ALICE, "--yes", "--strict-notify")
    assert r.code == 6 and open_store(zt_env).count(ALICE) == 0


def test_retry_then_success(cli, channels, http_capture):
    flaky = http_capture((503, 200))
    channels["configure"](channels=[{"slack": {"webhook_url": flaky.url("/s")}}])
    r = cli("notify", "test", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["attempts"] == 2 and len(flaky.requests) == 2


def test_4xx_is_not_retried(cli, channels, http_capture):
    gone = http_capture((404,))
    channels["configure"](channels=[{"slack": {"webhook_url": gone.url("/s")}}])
    r = cli("notify", "test", "--json")
    assert r.code == 6
    assert json.loads(r.out)[0]["attempts"] == 1 and len(gone.requests) == 1


def test_timeout_is_bounded(cli, zt_env, channels, http_capture):
    slow = http_capture((200,), delay=5)
    channels["configure"](channels=[{"webhook": {"url": slow.url("/h"), "secret_file": channels["block"]["channels"][3]["webhook"]["secret_file"]}}],
                          timeout_seconds=0.5, retries=1)
    seed(zt_env, {ALICE: 1})
    r = cli("revoke-sessions", "--user", ALICE, "--yes", "--json")
    assert r.code == 0, r.err
    (note,) = json.loads(r.out)["notifications"]
    assert note["attempts"] == 2 and note["error"] == "webhook: timed out"
    assert note["elapsed_seconds"] < 2.5  # 2 x 0.5 s timeout + backoff, not 2 x 5 s
    assert "webhook: timed out" in r.err


def test_smtp_refusal_never_blocks_the_revocation(cli, zt_env, channels):
    channels["smtp"].refuse = {"sec@example.com", "oncall@example.com"}
    channels["configure"](channels=[channels["block"]["channels"][0]])
    seed(zt_env, {ALICE: 1})
    r = cli("revoke-sessions", "--user", ALICE, "--yes")
    assert r.code == 0, r.err
    assert "notification via email failed after 1 attempt(s): SMTP server refused the recipients (550, 550)" in r.err
    assert open_store(zt_env).count(ALICE) == 0 and not channels["smtp"].messages


def test_smtp_wrong_password(cli, tmp_path, channels):
    email = json.loads(json.dumps(channels["block"]["channels"][0]))
    email["email"]["password_file"] = secret_file(tmp_path, "wrong.pass", "not-it")
    channels["configure"](channels=[email])
    r = cli("notify", "test")
    assert r.code == 6
    assert "refused the login" in r.text + r.err and "not-it" not in r.text + r.err


def test_smtp_untrusted_certificate_is_refused(cli, channels):
    email = json.loads(json.dumps(channels["block"]["channels"][0]))
    del email["email"]["ca_file"]
    channels["configure"](channels=[email])
    r = cli("notify", "test", "--json")
    assert r.code == 6
    assert json.loads(r.out)[0]["error"].endswith("TLS handshake failed") and not channels["smtp"].messages


def test_bad_channel_config(cli, channels):
    channels["configure"](channels=[{"carrier-pigeon": {}}])
    r = cli("notify", "test")
    assert r.code == 2 and "unknown channel 'carrier-pigeon'" in r.err
    channels["configure"](channels=[])
    assert cli("notify", "test").code == 3


def test_plain_http_only_to_loopback():
    assert check_endpoint("http://127.0.0.1:9/x", "u")
    assert check_endpoint("https://hooks.slack.com/services/x", "u")
    with pytest.raises(ConfigError):
        check_endpoint("http://hooks.example.com/x", "u")
    with pytest.raises(ConfigError):
        check_endpoint("ftp://127.0.0.1/x", "u")


def test_notify_event_for_other_features(zt_env, channels):
    from zerotrust_admin.config import load_config
    from zerotrust_admin import notify

    config = load_config(environ=zt_env)
    results = notify.notify_event(config, event="lockout", summary="bob locked out after 5 failed attempts", details={"principal": "bob"})
    assert [r.ok for r in results] == [True, True, True, True]
    assert json.loads(channels["pd"].requests[0]["body"])["payload"]["custom_details"]["principal"] == "bob"
    channels["configure"](enabled=False)
    assert notify.notify_event(load_config(environ=zt_env), event="lockout", summary="x") == []
    channels["configure"](channels=[{"slack": {"webhook_url_file": "/nonexistent/slack.url"}}])
    (broken,) = notify.notify_event(load_config(environ=zt_env), event="lockout", summary="x")
    assert broken.channel == "(config)" and not broken.ok

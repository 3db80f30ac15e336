"""Audit sinks: RFC 5424 syslog to a real UNIX datagram socket (standing in for
/dev/log) and to UDP/TCP listeners on loopback; stdout; the failure policy."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
from pathlib import Path

import pytest

from zerotrust_admin.audit import Actor, AuditLog
from zerotrust_admin.audit.sinks import SinkSet, StdoutSink, SyslogSink, build_sinks, format_rfc5424
from zerotrust_admin.errors import UsageError

# RFC 5424 section 6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}Z) (?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) "
    rb"(?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) (?P<sd>-|\[zt@32473(?: [^=\] \"]{1,32}=\"(?:[^\"\\\]]|\\.)*\")+\]) "
    rb"\xef\xbb\xbf(?P<msg>\{.*\})$", re.S)


def _write_config(zt_env, text: str) -> Path:
    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def unix_listener(tmp_path):
    path = str(tmp_path / "log.sock")  # short path: AF_UNIX names are limited to 108 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield path, sock
    sock.close()


@pytest.fixture
def udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock.getsockname()[1], sock
    sock.close()


def _audit_records(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_bytes().splitlines()]


def test_vault_put_ships_rfc5424_to_a_unix_datagram_socket(cli, zt_env, unix_listener):
    path, sock = unix_listener
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [file, syslog]\n  syslog: {{address: 'unix:{path}', facility: authpriv}}\n")
    res = cli("vault", "put", "db/password", input=b"s3cr3t-value")
    assert res.code == 0, res.err
    datagram = sock.recv(65536)
    m = RFC5424.match(datagram)
    assert m, datagram
    assert int(m["pri"]) == 10 * 8 + 6  # authpriv.info
    assert m["msgid"] == b"secret_access" and m["app"] == b"zerotrust-admin"
    shipped = json.loads(m["msg"])
    on_disk = _audit_records(Path(zt_env["ZEROTRUST_HOME"]))[-1]
    assert shipped == on_disk  # the SIEM gets the chained record, hash included
    assert b'user="alice@EXAMPLE.COM"' in m["sd"] and b'resource="db/password"' in m["sd"] and f'seq="{on_disk["seq"]}"'.encode() in m["sd"]
    assert b"s3cr3t-value" not in datagram


def test_udp_collector_receives_failures_at_warning_severity(cli, zt_env, udp_listener):
    port, sock = udp_listener
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [syslog]\n  syslog: {{address: 'udp://127.0.0.1:{port}', facility: local3}}\n")
    assert cli("vault", "get", "no/such").code == 3
    m = RFC5424.match(sock.recv(65536))
    assert m and int(m["pri"]) == (16 + 3) * 8 + 4  # local3.warning
    assert json.loads(m["msg"])["success"] is False and b'success="false"' in m["sd"]


def test_tcp_uses_octet_counting_framing():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def accept():
        conn, _ = srv.accept()
        conn.settimeout(5)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        got.append(data)
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    sink = SyslogSink(f"tcp://127.0.0.1:{srv.getsockname()[1]}")
    record = {"timestamp": "2026-01-01T00:00:00.000001Z", "level": "info", "event": "key_rotation", "user": "ops@X", "action": "rotate",
              "resource": "master]\"x", "source_ip": "10.0.0.1", "success": True, "seq": 7, "host": "h1"}
    line = json.dumps(record).encode()
    sink.send(record, line)
    sink.send(record, line)
    sink.close()
    t.join(10)
    srv.close()
    data = got[0]
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)])
        data = rest[int(length):]
    assert len(frames) == 2 and all(RFC5424.match(f) for f in frames)
    assert b'resource="master\\]\\"x"' in frames[0]  # SD-PARAM escaping of ] and "


def test_refuse_policy_fails_the_operation_and_records_the_gap(cli, zt_env, tmp_path):
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [file, syslog]\n  syslog: {{address: 'unix:{tmp_path}/nobody.sock'}}\n")
    res = cli("vault", "put", "db/password", input=b"v1")
    assert res.code == 1 and "could not be shipped" in res.err
    records = _audit_records(Path(zt_env["ZEROTRUST_HOME"]))
    _write_config(zt_env, "audit:\n  sinks: [file]\n")
    assert cli("vault", "get", "db/password").code == 3  # the write was rolled back
    assert records[-1]["event"] == "audit_sink_failure" and records[-1]["success"] is False
    assert records[-1]["details"]["failed_seq"] == records[-2]["seq"]
    assert cli("audit", "verify").code == 0


def test_warn_policy_proceeds_with_one_warning(cli, zt_env, tmp_path):
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [syslog]\n  on_sink_failure: warn\n  syslog: {{address: 'unix:{tmp_path}/nobody.sock'}}\n")
    res = cli("vault", "put", "db/password", input=b"v1")
    assert res.code == 0 and "only in the local audit log" in res.err
    assert cli("vault", "get", "db/password").out == b"v1"


def test_stdout_sink_writes_the_canonical_line(tmp_path):
    stream = io.StringIO()
    log = AuditLog(tmp_path / "audit.log", sinks=SinkSet([StdoutSink(stream)]))
    rec = log.append(event="secret_access", action="read", resource="x", success=True, actor=Actor("u@R", "10.0.0.1", "h"))
    record_line, checkpoint_line = stream.getvalue().splitlines(keepends=True)
    assert json.loads(record_line) == rec
    assert record_line.encode() == (tmp_path / "audit.log").read_bytes()
    assert checkpoint_line.encode() == (tmp_path / "audit.log.checkpoints").read_bytes()  # then the signed checkpoint (the witness)


def test_sink_config_errors():
    assert build_sinks({"sinks": ["file"]}) is None
    with pytest.raises(UsageError):
        build_sinks({"sinks": ["kafka"]})
    with pytest.raises(UsageError):
        build_sinks({"sinks": ["syslog"], "on_sink_failure": "ignore"})
    with pytest.raises(UsageError):
        build_sinks({"sinks": ["syslog"], "syslog": {"facility": "nonsense"}})
    with pytest.raises(UsageError):
        build_sinks({"sinks": ["syslog"], "syslog": {"address": "http://x"}})


def test_header_fields_are_sanitised():
    record = {"timestamp": "2026-01-01T00:00:00.000001Z", "event": "a very long event name with spaces that exceeds thirty-two", "host": "my host",
              "user": "u", "success": True, "level": "info"}
    m = RFC5424.match(format_rfc5424(record, b"{}", app_name="zerotrust admin"))
    assert m and m["host"] == b"my_host" and m["app"] == b"zerotrust_admin" and len(m["msgid"]) == 32


def test_checkpoint_follows_each_record_as_its_own_rfc5424_message(cli, zt_env, udp_listener):
    from zerotrust_admin.audit.checkpoint import parse_witness_line

    port, sock = udp_listener
    assert cli("init").code == 0
    _write_config(zt_env, f"audit:\n  sinks: [syslog]\n  syslog: {{address: 'udp://127.0.0.1:{port}'}}\n")
    assert cli("vault", "put", "db/password", input=b"v").code == 0
    record, checkpoint = sock.recv(65536), sock.recv(65536)
    assert RFC5424.match(record)["msgid"] == b"secret_access"
    m = RFC5424.match(checkpoint)
    assert m and m["msgid"] == b"audit_checkpoint" and int(m["pri"]) == 10 * 8 + 5  # authpriv.notice
    shipped = json.loads(m["msg"])
    home = Path(zt_env["ZEROTRUST_HOME"])
    assert shipped == json.loads((home / "audit.log.checkpoints").read_bytes().splitlines()[-1])
    assert shipped["seq"] == _audit_records(home)[-1]["seq"] and f'offset="{shipped["offset"]}"'.encode() in m["sd"]
    assert parse_witness_line(checkpoint) == shipped and parse_witness_line(record) is None


def test_webhook_sink_refuses_plain_http_off_loopback():
    assert build_sinks({"sinks": ["webhook"], "webhook": {"url": "http://127.0.0.1:9/x"}}).sinks[0].name == "webhook"
    with pytest.raises(UsageError):
        build_sinks({"sinks": ["webhook"], "webhook": {"url": "http://siem.example.com/x"}})
    with pytest.raises(UsageError):
        build_sinks({"sinks": ["webhook"], "webhook": {}})

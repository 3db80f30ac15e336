"""Audit sinks beyond the file: syslog (RFC 5424), webhook and stdout, for shipping to a SIEM.

The file record and its hash chain are always written first; they are the
evidence ``audit verify`` checks. Each configured sink then receives the same
record, then the signed checkpoint that now covers it (the off-host witness
``audit verify --witness`` reads back). Configuration (``audit`` section)::

    audit:
      sinks: [file, syslog, webhook, stdout]
      syslog:
        address: /dev/log            # or unix:/path, udp://host:514, tcp://host:601
        facility: authpriv           # RFC 5424 facility name or number
        app_name: zerotrust-admin
        timeout_seconds: 2
      webhook:
        url: https://siem.example.com/zerotrust   # http:// only to a loopback address
        timeout_seconds: 5
        ca_file: /etc/ssl/siem-ca.pem             # optional; TLS 1.2+ (zerotrust_admin.tlspolicy)
      on_sink_failure: refuse        # or: warn

Failure policy. ``refuse`` (the default) fails the operation with an
``AuditError`` (exit 1) when any sink cannot take the record, the way
HashiCorp Vault refuses a request no audit device could log: an unaudited
secret read is worse than a failed one. The refused operation does not return
its result (a read does not print the secret; a write inside the vault's
transaction is rolled back). In both modes the failure itself is appended to
the file log as an ``audit_sink_failure`` record, so the gap in the SIEM copy
is visible in the local chain. ``warn`` lets the operation proceed and prints
one warning line on stderr.

Message format (RFC 5424, section 6)::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [zt@32473 seq=".." ...] BOM{json}

MSGID is the audit event; the structured-data element carries the six
required fields plus the chain position; MSG is the canonical JSON record
(hash included) so a SIEM can verify the chain itself. Over TCP each message
is framed by octet counting (RFC 6587, section 3.4.1); over UDP and UNIX
datagram sockets one datagram is one message. 32473 is the private enterprise
number RFC 5612 reserves for documentation; sites with their own PEN can set
``audit.syslog.sd_id``.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Callable, Protocol
from urllib.parse import urlparse

from zerotrust_admin.errors import AuditError, UsageError
from zerotrust_admin.structs import field, struct

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITIES = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
POLICIES = ("refuse", "warn")
DEFAULT_SD_ID = "zt@32473"
BOM = b"\xef\xbb\xbf"


class SinkFailed(Exception):
    """A sink could not take a record. The message names the sink, never record content."""


class Sink(Protocol):
    name: str

    def send(self, record: dict, line: bytes) -> None: ...

    def close(self) -> None: ...


# --- RFC 5424 ---------------------------------------------------------------
def _printable(text: str, limit: int) -> str:
    """PRINTUSASCII (33-126) only, at most ``limit`` characters, "-" when empty."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in str(text))[:limit]
    return cleaned or "-"


def _sd_value(value) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_rfc5424(record: dict, line: bytes, *, facility: int = FACILITIES["authpriv"], app_name: str = "zerotrust-admin",
                   hostname: str | None = None, procid: str | None = None, sd_id: str = DEFAULT_SD_ID) -> bytes:
    severity = SEVERITIES.get(str(record.get("level", "info")).lower(), SEVERITIES["info"] if record.get("success", True) else SEVERITIES["warning"])
    pri = facility * 8 + severity
    timestamp = record.get("timestamp") or "-"
    host = _printable(hostname or record.get("host") or socket.gethostname(), 255)
    header = f"<{pri}>1 {timestamp} {host} {_printable(app_name, 48)} {_printable(procid or str(os.getpid()), 128)} {_printable(record.get('event', '-'), 32)}"
    params = []
    for name in ("seq", "user", "action", "resource", "source_ip", "success"):
        if name in record:
            params.append(f'{name}="{_sd_value(record[name])}"')
    sd = f"[{_printable(sd_id, 32)} {' '.join(params)}]" if params else "-"
    return f"{header} {sd} ".encode("utf-8") + BOM + line.rstrip(b"\n")


CHECKPOINT_MSGID = "audit_checkpoint"


def format_rfc5424_checkpoint(checkpoint: dict, line: bytes, *, facility: int = FACILITIES["authpriv"], app_name: str = "zerotrust-admin",
                              hostname: str | None = None, procid: str | None = None, sd_id: str = DEFAULT_SD_ID) -> bytes:
    """The witness message: MSGID ``audit_checkpoint``, severity notice, the
    checkpoint's position in the structured data, the signed checkpoint JSON as MSG."""
    pri = facility * 8 + SEVERITIES["notice"]
    host = _printable(hostname or socket.gethostname(), 255)
    header = f"<{pri}>1 {checkpoint.get('time') or '-'} {host} {_printable(app_name, 48)} {_printable(procid or str(os.getpid()), 128)} {CHECKPOINT_MSGID}"
    params = " ".join(f'{name}="{_sd_value(checkpoint[name])}"' for name in ("seq", "offset", "log", "key_id") if name in checkpoint)
    return f"{header} [{_printable(sd_id, 32)} {params}] ".encode("utf-8") + BOM + line.rstrip(b"\n")


# --- sinks -------------------------------------------------------------------
class StdoutSink:
    """One canonical JSON line per record on stdout (containers ship stdout)."""

    name = "stdout"

    def __init__(self, stream=None):
        self._stream = stream

    def send(self, record: dict, line: bytes) -> None:
        stream = self._stream or sys.stdout
        try:
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                stream.flush()
                buffer.write(line if line.endswith(b"\n") else line + b"\n")
                buffer.flush()
            else:
                stream.write(line.decode("utf-8").rstrip("\n") + "\n")
                stream.flush()
        except (OSError, ValueError) as exc:
            raise SinkFailed(f"stdout sink: {type(exc).__name__}") from None

    def send_checkpoint(self, checkpoint: dict, line: bytes) -> None:
        self.send(checkpoint, line)

    def close(self) -> None:
        pass


class WebhookSink:
    """POST each record, then each signed checkpoint, as one JSON body
    (``X-Zerotrust-Kind: record`` / ``checkpoint``). TLS 1.2+ with the
    project's TLS policy; ``http://`` only to a loopback address; no redirects."""

    name = "webhook"

    def __init__(self, url: str, *, timeout: float = 5.0, ca_file: str | None = None):
        from urllib.parse import urlparse

        parsed = urlparse(str(url or ""))
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise UsageError("audit.webhook.url must be an https:// URL")
        if parsed.scheme == "http" and not _loopback(parsed.hostname):
            raise UsageError("audit.webhook.url uses http:// to a non-loopback host", hint="use https:// (http:// is allowed only to 127.0.0.1/::1 for a local relay)")
        self.url = str(url)
        self.label = f"{parsed.scheme}://{parsed.hostname}{':' + str(parsed.port) if parsed.port else ''}"
        self.timeout = float(timeout)
        self.ca_file = ca_file

    def _post(self, line: bytes, kind: str) -> None:
        from zerotrust_admin.notify.base import DeliveryError
        from zerotrust_admin.notify.http import post

        try:
            post(self.url, line.rstrip(b"\n"), timeout=self.timeout, headers={"X-Zerotrust-Kind": kind}, ca_file=self.ca_file, what=f"webhook sink {self.label}")
        except DeliveryError as exc:
            raise SinkFailed(str(exc)) from None

    def send(self, record: dict, line: bytes) -> None:
        self._post(line, "record")

    def send_checkpoint(self, checkpoint: dict, line: bytes) -> None:
        self._post(line, "checkpoint")

    def close(self) -> None:
        pass


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@struct
class SyslogTarget:
    family: int
    kind: int
    address: object
    framing: str  # "datagram" | "octet-counting"
    label: str


def parse_syslog_address(address: str | None) -> SyslogTarget:
    text = (address or "/dev/log").strip()
    if text.startswith("/") or text.startswith("unix:"):
        path = text[len("unix:"):] if text.startswith("unix:") else text
        return SyslogTarget(socket.AF_UNIX, socket.SOCK_DGRAM, path, "datagram", f"unix:{path}")
    parsed = urlparse(text if "://" in text else f"udp://{text}")
    if parsed.scheme not in ("udp", "tcp") or not parsed.hostname:
        raise UsageError(f"audit.syslog.address {text!r} is not a syslog address", hint="use /dev/log, unix:/path, udp://host:514 or tcp://host:601")
    try:
        port = parsed.port or 514
    except ValueError:
        raise UsageError(f"audit.syslog.address {text!r} has an invalid port") from None
    family = socket.AF_INET6 if ":" in parsed.hostname else socket.AF_INET
    if parsed.scheme == "udp":
        return SyslogTarget(family, socket.SOCK_DGRAM, (parsed.hostname, port), "datagram", f"udp://{parsed.hostname}:{port}")
    return SyslogTarget(family, socket.SOCK_STREAM, (parsed.hostname, port), "octet-counting", f"tcp://{parsed.hostname}:{port}")


class SyslogSink:
    """RFC 5424 messages to the local syslog socket or a remote collector."""

    name = "syslog"

    def __init__(self, address: str | None = None, *, facility: str | int = "authpriv", app_name: str = "zerotrust-admin",
                 timeout: float = 2.0, sd_id: str = DEFAULT_SD_ID):
        self.target = parse_syslog_address(address)
        if isinstance(facility, int) or str(facility).isdigit():
            self.facility = int(facility)
        elif str(facility).lower() in FACILITIES:
            self.facility = FACILITIES[str(facility).lower()]
        else:
            raise UsageError(f"audit.syslog.facility {facility!r} is not a syslog facility", hint=f"one of: {', '.join(FACILITIES)}")
        if not 0 <= self.facility <= 23:
            raise UsageError(f"audit.syslog.facility {facility!r} is out of range (0-23)")
        self.app_name = app_name
        self.timeout = float(timeout)
        self.sd_id = sd_id
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        kind = self.target.kind
        sock = socket.socket(self.target.family, kind)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.target.address)
        except OSError as exc:
            sock.close()
            if self.target.family == socket.AF_UNIX and getattr(exc, "errno", None) == 91:  # EPROTOTYPE: a stream socket
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(self.target.address)
                except OSError as exc2:
                    sock.close()
                    raise SinkFailed(f"syslog sink {self.target.label}: {exc2.strerror or type(exc2).__name__}") from None
                self.target.framing = "octet-counting"
            else:
                raise SinkFailed(f"syslog sink {self.target.label}: {exc.strerror or type(exc).__name__}") from None
        self._sock = sock
        return sock

    def send(self, record: dict, line: bytes) -> None:
        self._send(format_rfc5424(record, line, facility=self.facility, app_name=self.app_name, sd_id=self.sd_id))

    def send_checkpoint(self, checkpoint: dict, line: bytes) -> None:
        self._send(format_rfc5424_checkpoint(checkpoint, line, facility=self.facility, app_name=self.app_name, sd_id=self.sd_id))

    def _send(self, message: bytes) -> None:
        if self.target.framing == "octet-counting":
            message = str(len(message)).encode() + b" " + message
        for attempt in (1, 2):  # one reconnect: the collector may have restarted
            try:
                sock = self._connect()
                if sock.type == socket.SOCK_DGRAM:
                    sock.send(message)
                else:
                    sock.sendall(message)
                return
            except SinkFailed:
                if attempt == 2:
                    raise
            except OSError as exc:
                self.close()
                if attempt == 2:
                    raise SinkFailed(f"syslog sink {self.target.label}: {exc.strerror or type(exc).__name__}") from None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"zerotrust-admin: warning: {message}\n")
    sys.stderr.flush()


@struct
class SinkSet:
    sinks: list
    policy: str = "refuse"
    warn: Callable[[str], None] = _stderr_warning
    failures: list[str] = field(default_factory=list)

    def deliver(self, record: dict, line: bytes, log, checkpoint: dict | None = None) -> None:
        """Send one durable record, then its signed checkpoint, to every sink; apply the failure policy."""
        failed = []
        checkpoint_line = None
        if checkpoint is not None:
            from zerotrust_admin.audit.checkpoint import canonical

            checkpoint_line = canonical(checkpoint) + b"\n"
        for sink in self.sinks:
            try:
                sink.send(record, line)
                if checkpoint_line is not None and hasattr(sink, "send_checkpoint"):
                    sink.send_checkpoint(checkpoint, checkpoint_line)
            except SinkFailed as exc:
                failed.append(str(exc))
        if not failed:
            return
        self.failures.extend(failed)
        withdraw = _withdrawn_write(record) if self.policy != "warn" else None
        extra = {"withdrawn": {"vault": withdraw[0], "generation": withdraw[1]}} if withdraw else {}
        try:
            log.append(event="audit_sink_failure", action="ship", resource=",".join(s.split(":", 1)[0] for s in failed),
                       success=False, actor=_actor_of(record), level="error", ship=False, _withdraw=withdraw,
                       failed_seq=record.get("seq"), policy=self.policy, errors=failed, **extra)
        except AuditError:
            pass  # the original AuditError below says enough
        if self.policy == "warn":
            for message in failed:
                self.warn(f"{message}; record {record.get('seq')} is only in the local audit log")
            return
        raise AuditError(
            f"{failed[0]}: audit record {record.get('seq')} could not be shipped, so the operation was refused",
            hint="fix the sink, or set audit.on_sink_failure: warn to proceed with the local log only",
        )

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _actor_of(record: dict):
    from zerotrust_admin.audit.log import Actor

    return Actor(user=str(record.get("user", "")), source_ip=str(record.get("source_ip", "")), host=str(record.get("host", "")),
                 identity=str(record.get("identity", "claimed")))


def build_sinks(audit_config: dict | None) -> SinkSet | None:
    """The sinks the ``audit`` config section asks for, or None for file only."""
    audit_config = audit_config or {}
    names = audit_config.get("sinks") or ["file"]
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    policy = str(audit_config.get("on_sink_failure") or "refuse").lower()
    if policy not in POLICIES:
        raise UsageError(f"audit.on_sink_failure {policy!r} is not one of {', '.join(POLICIES)}")
    sinks: list = []
    for name in names:
        name = str(name).lower()
        if name == "file":
            continue  # always written: it holds the chain
        if name == "stdout":
            sinks.append(StdoutSink())
        elif name == "webhook":
            opts = audit_config.get("webhook") or {}
            if not isinstance(opts, dict) or not opts.get("url"):
                raise UsageError("audit.webhook must be a mapping with a url (and optional timeout_seconds, ca_file)")
            sinks.append(WebhookSink(str(opts["url"]), timeout=float(opts.get("timeout_seconds", 5)), ca_file=opts.get("ca_file")))
        elif name == "syslog":
            opts = audit_config.get("syslog") or {}
            if not isinstance(opts, dict):
                raise UsageError("audit.syslog must be a mapping (address, facility, app_name, timeout_seconds)")
            sinks.append(SyslogSink(opts.get("address"), facility=opts.get("facility", "authpriv"), app_name=str(opts.get("app_name", "zerotrust-admin")),
                                    timeout=float(opts.get("timeout_seconds", 2)), sd_id=str(opts.get("sd_id", DEFAULT_SD_ID))))
        else:
            raise UsageError(f"unknown audit sink {name!r}", hint="audit.sinks takes: file, syslog, webhook, stdout")
    return SinkSet(sinks, policy) if sinks else None


def _withdrawn_write(record: dict) -> tuple[str, int] | None:
    """The vault write a refused record belonged to: under the "refuse" policy the
    operation is rolled back, so its pending generation (threat model V4) is
    withdrawn in the same record that reports the gap."""
    details = record.get("details")
    vault = details.get("vault") if isinstance(details, dict) else None
    if not isinstance(vault, dict):
        return None
    vault_id, generation = vault.get("id"), vault.get("generation")
    if isinstance(vault_id, str) and vault_id and isinstance(generation, int) and not isinstance(generation, bool):
        return vault_id, generation
    return None

"""Email over SMTP: STARTTLS (default) or implicit TLS (``ssl: true``), and
a login whose password comes from ``password_file``, ``${VAR}`` or
``vault:NAME``. A password is never sent over an unencrypted connection, and a
server that does not offer STARTTLS when ``starttls`` is on is refused."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from zerotrust_admin.errors import ConfigError
from zerotrust_admin.notify.base import DeliveryError, Notification, channel_secret
from zerotrust_admin.notify.http import tls_context


class EmailChannel:
    kind = "email"

    def __init__(self, config, settings: dict, name: str):
        self.name = name
        where = f"security.breach_notification.channels[{name}]"
        recipients = settings.get("recipients") or settings.get("to")
        if isinstance(recipients, str):
            recipients = [recipients]
        if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise ConfigError(f"{where}: email needs recipients (a list of addresses)")
        self.recipients = list(recipients)
        self.host = str(settings.get("smtp_host") or "localhost")
        self.implicit_tls = bool(settings.get("ssl") or settings.get("smtps"))
        self.port = int(settings.get("smtp_port") or (465 if self.implicit_tls else 587))
        self.sender = str(settings.get("sender") or settings.get("from") or f"zerotrust-admin@{socket.getfqdn()}")
        self.starttls = bool(settings.get("starttls", True)) and not self.implicit_tls
        self.username = settings.get("username") or settings.get("user")
        self._password = channel_secret(config, settings, "password", where)
        if self._password is not None and not self.username:
            self.username = self.sender
        if self._password is not None and not (self.starttls or self.implicit_tls):
            raise ConfigError(f"{where}: refusing to send an SMTP password without TLS", hint="set starttls: true (or ssl: true)")
        self.ca_file = settings.get("ca_file")
        self.min_tls = str(config.get("tls.min_version") or "1.2")

    def __repr__(self) -> str:
        return f"EmailChannel(name={self.name!r})"

    def describe(self) -> str:
        tls = "starttls" if self.starttls else ("tls" if self.implicit_tls else "plain")
        return f"email via {self.host}:{self.port} ({tls}) to {len(self.recipients)} recipient(s)"

    def message(self, note: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[{note.severity.upper()}] {note.title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(note.timestamp, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="zerotrust-admin")
        msg["X-ZeroTrust-Event"] = note.event
        msg["X-ZeroTrust-Notification-Id"] = note.id
        facts = "".join(f"  {k}: {v}\n" for k, v in note.details.items())
        msg.set_content(f"{note.summary}\n\n{facts}\nevent: {note.event}\nhost: {note.source}\nid: {note.id}\n")
        return msg

    def send_once(self, note: Notification, timeout: float) -> None:
        context = tls_context(self.ca_file, self.min_tls)
        try:
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with smtp:
                smtp.ehlo()
                if self.starttls:
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(f"SMTP server {self.host}:{self.port} does not offer STARTTLS", retryable=False)
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self._password is not None:
                    smtp.login(str(self.username), self._password.reveal().decode("utf-8"))
                smtp.send_message(self.message(note))
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError:
            raise DeliveryError(f"SMTP server {self.host}:{self.port} refused the login", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            raise DeliveryError(f"SMTP server refused the recipients ({', '.join(map(str, codes))})", retryable=all(400 <= c < 500 for c in codes)) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError, smtplib.SMTPHeloError) as exc:
            code = getattr(exc, "smtp_code", 0)
            raise DeliveryError(f"SMTP server {self.host}:{self.port} refused the message ({code})", retryable=400 <= code < 500) from None
        except ssl.SSLError:
            raise DeliveryError(f"SMTP server {self.host}:{self.port}: TLS handshake failed", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            kind = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
            raise DeliveryError(f"SMTP server {self.host}:{self.port}: {kind}", retryable=True) from None

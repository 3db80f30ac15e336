"""The read path of ``vault get`` against HashiCorp Vault / OpenBao, on the
standard library's http.client.

``vault get`` is what scripts and the broker call most, and importing hvac
(with requests and urllib3) costs ~100 ms per start, more than the whole
command otherwise. This module does only what one read needs: an AppRole (or
token) login and a KV v2 read of the current version. Everything else, and
any read of an older version, goes through hvac. Errors map exactly as the
hvac path maps them (vaultapi.client); response bodies are never shown.
"""

from __future__ import annotations

import json
import socket
import ssl
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import quote, urlsplit

from zerotrust_admin.errors import UsageError
from zerotrust_admin.vaultapi.client import LOGIN_REFUSED, MAX_BODY, denied, refused_body, tls_refused, unavailable
from zerotrust_admin.vaultapi.endpoint import check_url

KIND = "hashicorp secret provider"


class LightVault:
    def __init__(self, url: str, *, ca_file: str | None, verify: bool, timeout: float, namespace: str | None = None, setting: str = "secrets.config.url"):
        self.url = url = check_url(url, setting)  # N1: never a token over plain http to another host
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._ca = ca_file
        self._verify = verify
        self._timeout = timeout
        self._namespace = namespace
        self._conn = None
        self.token: str | None = None

    def _connection(self):
        if self._conn is None:
            if self._https:
                from zerotrust_admin.tlspolicy import ssl_context  # the TLS policy: TLS 1.2+, AEAD suites only

                ctx = ssl_context({"tls": {"verify": bool(self._verify), **({"ca_file": self._ca} if self._ca else {})}})
                self._conn = HTTPSConnection(self._host, self._port, timeout=self._timeout, context=ctx)
            else:
                self._conn = HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def request(self, method: str, path: str, body: dict | None = None, *, login: bool = False) -> tuple[int, dict]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["X-Vault-Token"] = self.token
        if self._namespace:
            headers["X-Vault-Namespace"] = self._namespace
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn = self._connection()
            conn.request(method, self._base + path, body=data, headers=headers)
            resp = conn.getresponse()
            declared = resp.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_BODY:
                self.close()
                raise refused_body(KIND, self.url, f"a body of {int(declared)} bytes (the limit is {MAX_BODY})")
            raw = resp.read(MAX_BODY + 1)  # N2: never buffer an unbounded body
            if len(raw) > MAX_BODY:
                self.close()
                raise refused_body(KIND, self.url, f"a body over {MAX_BODY} bytes")
        except ssl.SSLCertVerificationError:
            self.close()
            raise tls_refused(KIND, self.url, self._ca) from None
        except ssl.SSLError:
            self.close()
            raise tls_refused(KIND, self.url, self._ca) from None
        except (socket.timeout, TimeoutError):
            self.close()
            raise unavailable(KIND, self.url, "not answering", self._timeout) from None
        except (OSError, HTTPException):
            self.close()
            raise unavailable(KIND, self.url, "unreachable", self._timeout) from None
        status = resp.status
        if status in (401, 403) or (login and status == 400):
            raise denied(KIND, self.url, LOGIN_REFUSED if login else "denied the request")
        if status >= 500:
            raise unavailable(KIND, self.url, "failing (server error)")
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            if 200 <= status < 300:  # a success must be the JSON object the API defines (N2)
                raise refused_body(KIND, self.url, "a malformed response")
            payload = {}
        return status, payload

    def login_approle(self, role_id: str, secret_id: str, mount: str) -> None:
        _status, payload = self.request("POST", f"/v1/auth/{quote(mount)}/login", {"role_id": role_id, "secret_id": secret_id}, login=True)
        auth = payload.get("auth")
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise denied(KIND, self.url, LOGIN_REFUSED)
        self.token = token

    def read_current(self, mount: str, name: str) -> tuple[int, dict]:
        """(status, response) of a KV v2 read of the current version."""
        status, payload = self.request("GET", f"/v1/{quote(mount)}/data/{quote(name)}")
        if status not in (200, 404):
            raise UsageError(f"{KIND} at {self.url} rejected the request for {name!r} (HTTP {status})")
        return status, payload

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

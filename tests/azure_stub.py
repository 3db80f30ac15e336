"""A small, faithful stand-in for Azure Key Vault's secrets REST API and the
Microsoft Entra token endpoint, on a loopback TLS server.

No Key Vault emulator exists, so the real ``azure-keyvault-secrets`` and
``azure-identity`` SDKs talk to this server over HTTPS (backends.md, "Azure
Key Vault"): the bearer challenge (401 + WWW-Authenticate), the client
credentials grant (a wrong client secret gets 401 ``invalid_client``), and the
secrets API with versions, tags, soft delete, recover and purge. Names are
case-insensitive, like Key Vault's. Error bodies are ``{error: {code, message}}``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


def make_tls_files(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """(ca.pem, server cert, server key) for ``host``, made with cryptography."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zt-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(key_pem, 0o600)
    return ca_pem, cert_pem, key_pem


class KeyVaultState:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets: dict[str, dict] = {}   # lower name -> {"name", "versions": [bundle...]}
        self.deleted: dict[str, dict] = {}   # lower name -> same, plus deletion info
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.fail_next: list[tuple[int, str]] = []  # (HTTP status, message) for the next secrets calls
        self.fail_after: int | None = None   # after this many more secrets calls, answer 503 until cleared


class _Handler(BaseHTTPRequestHandler):
    server_version = "zt-azure-stub/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # --- plumbing --------------------------------------------------------
    @property
    def state(self) -> KeyVaultState:
        return self.server.state  # type: ignore[attr-defined]

    def _send(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": {"code": code, "message": message}})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @property
    def base(self) -> str:
        return f"https://{self.headers.get('Host')}"

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        self.state.requests.append((method, path))
        if self.server.delay:  # type: ignore[attr-defined]
            time.sleep(self.server.delay)  # type: ignore[attr-defined]
        if path.endswith("/oauth2/v2.0/token") or path.endswith("/.well-known/openid-configuration"):
            return self._aad(method, path)
        # Key Vault: every call needs a bearer token issued by the token endpoint.
        auth = self.headers.get("Authorization") or ""
        body = self._body()
        if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in self.state.tokens:
            tenant = self.server.tenant_id  # type: ignore[attr-defined]
            challenge = f'Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net"'
            return self._send(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                              {"WWW-Authenticate": challenge})
        if self.state.fail_next:
            status, message = self.state.fail_next.pop(0)
            return self._error(status, "InternalError" if status >= 500 else "Forbidden", message)
        if self.state.fail_after is not None:
            if self.state.fail_after <= 0:
                return self._error(503, "ServiceUnavailable", "injected outage")
            self.state.fail_after -= 1
        parts = [p for p in path.split("/") if p]
        with self.state.lock:
            return self._keyvault(method, parts, body, parse_qs(url.query))

    # --- Microsoft Entra ID (only what MSAL's client credentials flow uses) ----
    def _aad(self, method: str, path: str) -> None:
        tenant = path.strip("/").split("/")[0]
        if path.endswith("openid-configuration"):
            issuer = f"{self.base}/{tenant}/v2.0"
            return self._send(200, {
                "token_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": issuer, "jwks_uri": f"{self.base}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"], "token_endpoint_auth_methods_supported": ["client_secret_post"],
            })
        form = parse_qs(self._body().decode())
        client_id = (form.get("client_id") or [""])[0]
        secret = (form.get("client_secret") or [""])[0]
        if tenant != self.server.tenant_id or client_id != self.server.client_id or secret != self.server.client_secret:  # type: ignore[attr-defined]
            return self._send(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.",
                                    "error_codes": [7000215], "correlation_id": str(uuid.uuid4())})
        token = uuid.uuid4().hex + uuid.uuid4().hex
        self.state.tokens.add(token)
        return self._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    # --- Key Vault secrets -----------------------------------------------------------
    def _bundle(self, entry: dict, version: dict, with_value: bool = True) -> dict:
        out = {"id": f"{self.base}/secrets/{entry['name']}/{version['version']}", "attributes": dict(version["attributes"]),
               "tags": dict(version.get("tags") or {})}
        if version.get("contentType"):
            out["contentType"] = version["contentType"]
        if with_value:
            out["value"] = version["value"]
        return out

    def _deleted_bundle(self, entry: dict, with_value: bool = False) -> dict:
        out = self._bundle(entry, entry["versions"][-1], with_value)
        out.update(recoveryId=f"{self.base}/deletedsecrets/{entry['name']}", deletedDate=entry["deletedDate"],
                   scheduledPurgeDate=entry["deletedDate"] + 90 * 86400)
        return out

    def _keyvault(self, method: str, parts: list[str], body: bytes, query: dict) -> None:
        st = self.state
        if parts == ["secrets"] and method == "GET":
            items = [self._bundle(e, e["versions"][-1], False) for e in st.secrets.values()]
            return self._send(200, {"value": items, "nextLink": None})
        if parts == ["deletedsecrets"] and method == "GET":
            return self._send(200, {"value": [self._deleted_bundle(e) for e in st.deleted.values()], "nextLink": None})
        if len(parts) >= 2 and parts[0] == "secrets":
            name = parts[1]
            if not NAME_RE.match(name):
                return self._error(400, "BadParameter", "The request URI contains an invalid name")
            key = name.lower()
            entry = st.secrets.get(key)
            if method == "PUT" and len(parts) == 2:
                if key in st.deleted:
                    return self._error(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused")
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    return self._error(400, "BadParameter", "invalid JSON")
                if not isinstance(data.get("value"), str):
                    return self._error(400, "BadParameter", "value is required")
                now = int(time.time())
                version = {"version": uuid.uuid4().hex, "value": data["value"], "tags": data.get("tags") or {},
                           "contentType": data.get("contentType"),
                           "attributes": {"enabled": True, "created": now, "updated": now, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}}
                if entry is None:
                    entry = st.secrets[key] = {"name": name, "versions": []}
                entry["versions"].append(version)
                return self._send(200, self._bundle(entry, version))
            if entry is None:
                return self._error(404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault.")
            if method == "GET" and len(parts) == 3 and parts[2] == "versions":
                return self._send(200, {"value": [self._bundle(entry, v, False) for v in entry["versions"]], "nextLink": None})
            if method == "GET" and len(parts) in (2, 3):
                wanted = parts[2] if len(parts) == 3 and parts[2] else None
                for version in entry["versions"]:
                    if wanted is None and version is entry["versions"][-1] or version["version"] == wanted:
                        return self._send(200, self._bundle(entry, version))
                return self._error(404, "SecretNotFound", f"A secret with (name/id) {name}/{wanted} was not found in this key vault.")
            if method == "PATCH" and len(parts) == 3:
                data = json.loads(body or b"{}")
                for version in entry["versions"]:
                    if version["version"] == parts[2]:
                        if "tags" in data:
                            version["tags"] = data["tags"] or {}
                        if "contentType" in data:
                            version["contentType"] = data["contentType"]
                        version["attributes"]["updated"] = int(time.time())
                        return self._send(200, self._bundle(entry, version, False))
                return self._error(404, "SecretNotFound", "version not found")
            if method == "DELETE" and len(parts) == 2:
                del st.secrets[key]
                entry["deletedDate"] = int(time.time())
                st.deleted[key] = entry
                return self._send(200, self._deleted_bundle(entry))
        if len(parts) >= 2 and parts[0] == "deletedsecrets":
            key = parts[1].lower()
            entry = st.deleted.get(key)
            if entry is None:
                return self._error(404, "SecretNotFound", f"Deleted Secret not found: {parts[1]}")
            if method == "GET" and len(parts) == 2:
                return self._send(200, self._deleted_bundle(entry))
            if method == "DELETE" and len(parts) == 2:
                del st.deleted[key]
                return self._send(204)
            if method == "POST" and parts[2:] == ["recover"]:
                del st.deleted[key]
                entry.pop("deletedDate", None)
                st.secrets[key] = entry
                return self._send(200, self._bundle(entry, entry["versions"][-1], False))
        return self._error(400, "BadParameter", f"unsupported: {method} /{'/'.join(parts)}")


class AzureKeyVaultStub:
    """``url`` (the vault URL), ``authority_host``, ``ca_file``, ``settings()``,
    ``state`` (inspect or inject failures), ``stop()``."""

    TENANT = "00000000-0000-4000-8000-000000000001"
    CLIENT_ID = "11111111-1111-4111-8111-111111111111"

    def __init__(self, directory: Path | None = None, delay: float = 0.0):
        self.dir = Path(directory or tempfile.mkdtemp(prefix="zt-azure-"))
        self.ca_file, cert, key = make_tls_files(self.dir)
        self.client_secret = "zt-azure-" + os.urandom(12).hex()
        self.state = KeyVaultState()
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.state = self.state  # type: ignore[attr-defined]
        httpd.tenant_id, httpd.client_id, httpd.client_secret = self.TENANT, self.CLIENT_ID, self.client_secret  # type: ignore[attr-defined]
        httpd.delay = delay  # type: ignore[attr-defined]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self.httpd = httpd
        self.port = httpd.server_address[1]
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def settings(self, **extra) -> dict:
        block = {"vault_url": self.url, "tenant_id": self.TENANT, "client_id": self.CLIENT_ID, "client_secret": self.client_secret,
                 "authority_host": self.url, "ca_file": str(self.ca_file), "verify_challenge_resource": False, "timeout": 5}
        block.update(extra)
        return block

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

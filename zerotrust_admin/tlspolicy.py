"""The TLS policy (``tls`` block) applied to every outbound TLS connection.

``tls``::

    tls:
      min_version: "1.2"            # "1.2" or "1.3"; anything lower is refused
      ciphers: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, ...]   # IANA names, AEAD only
      ca_file: /etc/zerotrust/ca.pem    # trust anchors (default: the system store)
      cert_file: ...  key_file: ...     # client certificate (mutual TLS)

``ssl_context(config)`` builds the one ``ssl.SSLContext`` everything uses; the
``*_kwargs``/``*_session`` helpers hand the same policy to Redis, requests
(hvac, Azure, webhooks) and boto3. ``explain(exc, peer)`` turns a handshake
failure into one clear line.

TLS 1.3 suites are all AEAD and Python's ``ssl`` cannot select among them, so
IANA TLS 1.3 names are accepted and need no mapping.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from zerotrust_admin.errors import ConfigError, UnavailableError

POLICY_FLOOR = ssl.TLSVersion.TLSv1_2

# IANA name -> OpenSSL name, for the AEAD suites of TLS 1.2.
IANA_TO_OPENSSL = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM": "ECDHE-ECDSA-AES128-CCM",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM": "ECDHE-ECDSA-AES256-CCM",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "DHE-RSA-AES128-GCM-SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": "DHE-RSA-AES256-GCM-SHA384",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "DHE-RSA-CHACHA20-POLY1305",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
}
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256"}
# Without a cipher list: forward-secret AEAD suites only.
DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"
AEAD_MARKERS = ("GCM", "CHACHA20", "CCM")
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
TLS_KEYS = {"min_version", "ciphers", "ca_file", "cert_file", "key_file", "verify", "enabled"}


def _tls_section(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        section = config.get("tls", config) if "tls" in config else config
    else:
        section = config.section("tls")
    return section if isinstance(section, dict) else {}


def parse_min_version(value) -> ssl.TLSVersion:
    if value is None:
        return POLICY_FLOOR
    text = str(value).strip().upper().replace("TLSV", "").replace("TLS", "").strip(" V_").replace("_", ".")
    if text in ("1", "1.0", "1.1"):
        raise ConfigError(f"tls.min_version {value!r} is below the policy floor (TLS 1.2)", hint='set tls.min_version: "1.2" or "1.3"')
    if text not in VERSIONS:
        raise ConfigError(f"tls.min_version {value!r} is not a TLS version", hint='use "1.2" or "1.3"')
    return VERSIONS[text]


def openssl_cipher_string(ciphers) -> str | None:
    """Map the configured IANA names to an OpenSSL cipher string (None = default).

    A non-AEAD or unknown name is a ConfigError: a typo must not quietly widen
    the list, and a CBC suite must not be negotiable.
    """
    if not ciphers:
        return None
    names = ciphers if isinstance(ciphers, list) else [c for c in str(ciphers).replace(",", ":").split(":")]
    mapped = []
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        upper = name.upper()
        if upper in TLS13_SUITES:
            continue
        if upper in IANA_TO_OPENSSL:
            mapped.append(IANA_TO_OPENSSL[upper])
        elif upper in IANA_TO_OPENSSL.values():
            mapped.append(upper)
        elif not any(m in upper for m in AEAD_MARKERS):
            raise ConfigError(f"tls.ciphers: {name} is not an AEAD cipher suite", hint="allow only AES-GCM, AES-CCM or ChaCha20-Poly1305 suites")
        else:
            raise ConfigError(f"tls.ciphers: unknown cipher suite {name!r}", hint="use IANA names such as TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    if not mapped:
        return None if names else DEFAULT_CIPHERS  # TLS 1.3 names only: 1.2 keeps the safe default
    return ":".join(mapped)


def ssl_context(config=None, *, purpose: str = "client") -> ssl.SSLContext:
    """The client-side SSLContext for the ``tls`` block (a Config or a dict)."""
    tls = _tls_section(config)
    unknown = sorted(set(tls) - TLS_KEYS)
    if unknown:
        raise ConfigError(f"unknown config key 'tls.{unknown[0]}'")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = parse_min_version(tls.get("min_version"))
    ciphers = openssl_cipher_string(tls.get("ciphers"))
    try:
        ctx.set_ciphers(ciphers or DEFAULT_CIPHERS)
    except ssl.SSLError:
        raise ConfigError("tls.ciphers: none of the configured suites is available in this OpenSSL build") from None
    ctx.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    if tls.get("verify") is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ca_file = tls.get("ca_file")
        if ca_file:
            path = Path(str(ca_file)).expanduser()
            if not path.is_file():
                raise ConfigError(f"tls.ca_file points to {path}, which does not exist", hint="fix the path or remove tls.ca_file to use the system store")
            try:
                ctx.load_verify_locations(cafile=str(path))
            except ssl.SSLError:
                raise ConfigError(f"tls.ca_file {path} holds no usable PEM certificate") from None
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    cert_file = tls.get("cert_file")
    if cert_file:
        key_file = tls.get("key_file")
        try:
            ctx.load_cert_chain(str(Path(str(cert_file)).expanduser()), str(Path(str(key_file)).expanduser()) if key_file else None)
        except FileNotFoundError:
            raise ConfigError(f"tls.cert_file/key_file: {cert_file} or its key does not exist") from None
        except ssl.SSLError:
            raise ConfigError("tls.cert_file/key_file: the client certificate or its key cannot be loaded", hint="PEM certificate and unencrypted PEM key, key matching the certificate") from None
    elif tls.get("key_file"):
        raise ConfigError("tls.key_file is set without tls.cert_file")
    return ctx


def explain(exc: BaseException, peer: str) -> UnavailableError:
    """One clear line for a failed handshake with ``peer`` ("host:port")."""
    reason = (getattr(exc, "reason", None) or "").upper()
    text = str(exc).upper()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return UnavailableError(f"TLS to {peer} refused: the server certificate is not trusted ({getattr(exc, 'verify_message', 'verification failed')})",
                                hint="set tls.ca_file to the CA that signed the server's certificate")
    if any(k in reason or k in text for k in ("UNSUPPORTED_PROTOCOL", "PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE", "WRONG_SSL_VERSION", "VERSION_TOO_LOW")):
        return UnavailableError(f"TLS to {peer} refused by policy: the server only offers a TLS version below the minimum (TLS 1.2)",
                                hint="upgrade the server to TLS 1.2 or 1.3; the tool will not downgrade")
    if any(k in reason or k in text for k in ("NO_SHARED_CIPHER", "HANDSHAKE_FAILURE", "NO_CIPHERS_AVAILABLE", "INSUFFICIENT_SECURITY", "NO_SUITABLE")):
        return UnavailableError(f"TLS to {peer} refused by policy: the server offers no AEAD cipher suite the policy allows (AES-GCM, ChaCha20-Poly1305)",
                                hint="enable an ECDHE AES-GCM or ChaCha20-Poly1305 suite on the server")
    return UnavailableError(f"TLS handshake with {peer} failed ({reason or type(exc).__name__})", hint="check the server's TLS settings and tls.* in the config")


def connect(host: str, port: int, config=None, *, timeout: float = 10.0, server_hostname: str | None = None):
    """Open a TLS connection under the policy (used by probes and tests); returns the SSLSocket."""
    import socket

    ctx = ssl_context(config)
    peer = f"{host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise UnavailableError(f"cannot connect to {peer}: {exc.strerror or type(exc).__name__}") from None
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname or host)
    except (ssl.SSLError, ConnectionResetError) as exc:
        raw.close()
        raise explain(exc, peer) from None


# --- the same policy for SDKs that build their own connections ------------------
def redis_kwargs(config=None) -> dict:
    """Keyword arguments for ``redis.Redis(...)`` / ``from_url`` with ``rediss://``."""
    tls = _tls_section(config)
    ctx_min = parse_min_version(tls.get("min_version"))
    kwargs = {
        "ssl_min_version": ctx_min,
        "ssl_ciphers": openssl_cipher_string(tls.get("ciphers")) or DEFAULT_CIPHERS,
        "ssl_cert_reqs": "none" if tls.get("verify") is False else "required",
        "ssl_check_hostname": tls.get("verify") is not False,
    }
    if tls.get("ca_file"):
        kwargs["ssl_ca_certs"] = str(Path(str(tls["ca_file"])).expanduser())
    if tls.get("cert_file"):
        kwargs["ssl_certfile"] = str(Path(str(tls["cert_file"])).expanduser())
        if tls.get("key_file"):
            kwargs["ssl_keyfile"] = str(Path(str(tls["key_file"])).expanduser())
    return kwargs


def requests_session(config=None):
    """A ``requests.Session`` whose HTTPS connections use the policy context
    (for hvac ``Client(session=...)``, webhooks, Azure's RequestsTransport)."""
    import requests
    from requests.adapters import HTTPAdapter

    ctx = ssl_context(config)
    tls = _tls_section(config)
    verify = str(Path(str(tls["ca_file"])).expanduser()) if tls.get("ca_file") else tls.get("verify") is not False

    class _PolicyAdapter(HTTPAdapter):
        def send(self, request, **kwargs):
            # requests lets REQUESTS_CA_BUNDLE override session.verify; the policy's CA wins here.
            kwargs["verify"] = verify
            return super().send(request, **kwargs)

        def init_poolmanager(self, *args, **kwargs):
            kwargs["ssl_context"] = ctx
            return super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, *args, **kwargs):
            kwargs["ssl_context"] = ctx
            return super().proxy_manager_for(*args, **kwargs)

    session = requests.Session()
    session.mount("https://", _PolicyAdapter())
    session.verify = verify
    if tls.get("cert_file"):
        session.cert = (tls["cert_file"], tls["key_file"]) if tls.get("key_file") else tls["cert_file"]
    return session


def azure_transport(config=None):
    """``transport=`` for azure-keyvault-secrets / azure-identity clients."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(session=requests_session(config), session_owner=False)


def apply_to_boto3_client(client, config=None):
    """Make a boto3/botocore client's HTTPS pool use the policy context.

    botocore has no public hook for an SSLContext; its URLLib3Session builds
    the pool manager from ``_get_ssl_context``. We replace that context and
    rebuild the pool once, before the first request.
    """
    ctx = ssl_context(config)
    session = client._endpoint.http_session
    session._get_ssl_context = lambda: ctx
    session._manager = session._manager.__class__(**session._get_pool_manager_kwargs())
    return client


def boto3_client_kwargs(config=None) -> dict:
    """``verify=`` and client-certificate settings for ``boto3.client(...)``."""
    tls = _tls_section(config)
    kwargs: dict = {}
    if tls.get("ca_file"):
        kwargs["verify"] = str(Path(str(tls["ca_file"])).expanduser())
    if tls.get("cert_file"):
        from botocore.config import Config as BotoConfig

        cert = (tls["cert_file"], tls["key_file"]) if tls.get("key_file") else tls["cert_file"]
        kwargs["config"] = BotoConfig(client_cert=cert)
    return kwargs

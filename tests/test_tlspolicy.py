"""The TLS policy against real loopback TLS servers: a server offering only
TLS 1.1, or only a non-AEAD (CBC) suite, is refused with one clear line; TLS
1.2 with an AEAD suite and TLS 1.3 work. The same policy reaches redis-py,
requests (hvac/Azure/webhooks) and boto3 through the helpers."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import warnings

import pytest

from tests.azure_stub import make_tls_files
from tests.conftest import backend_missing
from zerotrust_admin import tlspolicy
from zerotrust_admin.errors import ConfigError, UnavailableError


class TLSServer:
    """Accepts TLS connections (threads, real OpenSSL) and answers HTTP with 200."""

    def __init__(self, cert, key, *, min_version=None, max_version=None, ciphers=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)  # deliberately old
        if ciphers:
            ctx.set_ciphers(ciphers)
        if min_version:
            ctx.minimum_version = min_version
        if max_version:
            ctx.maximum_version = max_version
        ctx.load_cert_chain(cert, key)
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handshakes: list[tuple[str, str]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes.append((tls.version(), tls.cipher()[0]))
                    data = tls.recv(4096)
                    if data[:4] in (b"GET ", b"POST"):
                        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki):
    started = []

    def start(**kwargs):
        s = TLSServer(pki[1], pki[2], **kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def cfg(pki, **extra):
    return {"tls": {"ca_file": str(pki[0]), **extra}}


TLS11_ONLY = dict(min_version=ssl.TLSVersion.TLSv1_1, max_version=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
CBC_ONLY = dict(max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
AEAD_12 = dict(max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")


def _probe_without_policy(port, pki, **server_kwargs):
    """Prove the test server really offers what it claims (a permissive client connects)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)
    ctx.load_verify_locations(pki[0])
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.version(), tls.cipher()[0]


def test_tls11_only_peer_is_refused(server, pki):
    s = server(**TLS11_ONLY)
    assert _probe_without_policy(s.port, pki)[0] == "TLSv1.1"
    with pytest.raises(UnavailableError) as err:
        tlspolicy.connect("127.0.0.1", s.port, cfg(pki))
    assert "refused by policy" in err.value.message and "TLS version below the minimum" in err.value.message
    assert "\n" not in err.value.message


def test_non_aead_peer_is_refused(server, pki):
    s = server(**CBC_ONLY)
    version, cipher = _probe_without_policy(s.port, pki)
    assert version == "TLSv1.2" and "GCM" not in cipher and "CHACHA" not in cipher
    with pytest.raises(UnavailableError) as err:
        tlspolicy.connect("127.0.0.1", s.port, cfg(pki))
    assert "refused by policy" in err.value.message and "AEAD" in err.value.message


def test_tls12_aead_and_tls13_are_accepted(server, pki):
    s12 = server(**AEAD_12)
    with tlspolicy.connect("127.0.0.1", s12.port, cfg(pki)) as tls:
        assert tls.version() == "TLSv1.2" and tls.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    s13 = server()
    with tlspolicy.connect("127.0.0.1", s13.port, cfg(pki, min_version="1.3")) as tls:
        assert tls.version() == "TLSv1.3"


def test_min_version_13_refuses_a_12_peer(server, pki):
    s = server(**AEAD_12)
    with pytest.raises(UnavailableError, match="below the minimum"):
        tlspolicy.connect("127.0.0.1", s.port, cfg(pki, min_version="1.3"))


def test_configured_iana_ciphers_restrict_the_handshake(server, pki):
    s = server(**AEAD_12)  # offers only AES256-GCM
    with pytest.raises(UnavailableError, match="AEAD"):
        tlspolicy.connect("127.0.0.1", s.port, cfg(pki, ciphers=["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]))
    with tlspolicy.connect("127.0.0.1", s.port, cfg(pki, ciphers=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"])) as tls:
        assert tls.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_untrusted_certificate_is_refused(server, pki):
    s = server(**AEAD_12)
    with pytest.raises(UnavailableError, match="not trusted"):
        tlspolicy.connect("127.0.0.1", s.port, {"tls": {}})  # system store does not know the test CA


@pytest.mark.parametrize("tls,fragment", [
    ({"min_version": "1.1"}, "below the policy floor"),
    ({"min_version": "TLSv1"}, "below the policy floor"),
    ({"min_version": "2.0"}, "not a TLS version"),
    ({"ciphers": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"]}, "not an AEAD"),
    ({"ciphers": ["TLS_RSA_WITH_RC4_128_SHA"]}, "not an AEAD"),
    ({"ciphers": ["TLS_FOO_WITH_AES_128_GCM_SHA256"]}, "unknown cipher suite"),
    ({"key_file": "/x"}, "without tls.cert_file"),
    ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
])
def test_weak_or_broken_settings_are_config_errors(tls, fragment):
    with pytest.raises(ConfigError, match=fragment):
        tlspolicy.ssl_context({"tls": tls})


def test_iana_names_map_to_openssl():
    assert tlspolicy.openssl_cipher_string(["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]) == \
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
    names = {c["name"] for c in tlspolicy.ssl_context({"tls": {}}).get_ciphers()}
    assert names and all(any(m in n for m in ("GCM", "CHACHA20", "CCM")) for n in names)


def test_config_check_flags_weak_tls(cli, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("tls:\n  min_version: '1.1'\n  ciphers: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256]\n")
    path.chmod(0o600)
    result = cli("config", "check", "--json", env={"ZEROTRUST_CONFIG": str(path)})
    assert result.code == 1
    import json

    keys = {p["key"] for p in json.loads(result.out)["problems"]}
    assert {"tls.min_version", "tls.ciphers"} <= keys


# --- the same policy through the SDK helpers ----------------------------------------
class TLSRedis:
    """A real redis-server speaking only TLS, with the given protocol and ciphers."""

    def __init__(self, pki, protocols: str, ciphers: str | None = None):
        import shutil
        import subprocess

        from tests.conftest import backend_missing
        from tests.servers import free_port, wait_port

        binary = shutil.which("redis-server")
        if binary is None:
            backend_missing("redis-server (apt-get install redis-server)")
        self.port = free_port()
        argv = [binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--tls-cert-file", str(pki[1]), "--tls-key-file", str(pki[2]), "--tls-ca-cert-file", str(pki[0]),
                "--tls-auth-clients", "no", "--tls-protocols", protocols]
        if ciphers:
            argv += ["--tls-ciphers", ciphers]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_redis_client_follows_the_policy(pki):
    import redis

    good = TLSRedis(pki, "TLSv1.2 TLSv1.3")
    bad = TLSRedis(pki, "TLSv1.2", "ECDHE-ECDSA-AES128-SHA256:@SECLEVEL=0")
    try:
        assert redis.Redis(host="127.0.0.1", port=good.port, ssl=True, socket_timeout=5, **tlspolicy.redis_kwargs(cfg(pki))).ping() is True
        # Without the policy redis-py accepts the CBC-only server; with it, the handshake is refused.
        assert redis.Redis(host="127.0.0.1", port=bad.port, ssl=True, socket_timeout=5, ssl_ca_certs=str(pki[0])).ping() is True
        with pytest.raises(redis.exceptions.ConnectionError, match="HANDSHAKE_FAILURE|handshake failure"):
            redis.Redis(host="127.0.0.1", port=bad.port, ssl=True, socket_timeout=5, **tlspolicy.redis_kwargs(cfg(pki))).ping()
    finally:
        good.stop()
        bad.stop()


def test_requests_session_follows_the_policy(server, pki):
    import requests

    good = server(**AEAD_12)
    session = tlspolicy.requests_session(cfg(pki))
    assert session.get(f"https://127.0.0.1:{good.port}/v1/sys/health", timeout=5).status_code == 200
    bad = server(**CBC_ONLY)
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{bad.port}/", timeout=5)
    # A plain session (no policy) would have accepted the CBC suite: the policy made the difference.
    assert requests.get(f"https://127.0.0.1:{bad.port}/", timeout=5, verify=str(pki[0])).status_code == 200


def test_boto3_client_follows_the_policy(server, pki):
    try:
        import boto3
        from botocore.exceptions import SSLError
    except ImportError:
        backend_missing("boto3 (the aws extra)")

    bad = server(**CBC_ONLY)
    client = boto3.client("sts", endpoint_url=f"https://127.0.0.1:{bad.port}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing", **tlspolicy.boto3_client_kwargs(cfg(pki)))
    tlspolicy.apply_to_boto3_client(client, cfg(pki))
    with pytest.raises(SSLError):
        client.get_caller_identity()
    assert not bad.handshakes
    # Control: the same client without the policy completes the CBC handshake.
    plain = boto3.client("sts", endpoint_url=f"https://127.0.0.1:{bad.port}", region_name="us-east-1", verify=str(pki[0]),
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        plain.get_caller_identity()
    except Exception:
        pass  # the stand-in does not speak STS; only the handshake matters
    assert bad.handshakes and "GCM" not in bad.handshakes[0][1]


def test_session_store_over_rediss_follows_the_policy(pki, tmp_path):
    """The Redis session store (sessions/redis_store.py) goes through the same policy."""
    from zerotrust_admin.config import load_config
    from zerotrust_admin.sessions import open_session_store

    good = TLSRedis(pki, "TLSv1.2 TLSv1.3")
    bad = TLSRedis(pki, "TLSv1.2", "ECDHE-ECDSA-AES128-SHA256:@SECLEVEL=0")
    try:
        for server, ok in ((good, True), (bad, False)):
            path = tmp_path / f"config-{server.port}.yaml"
            path.write_text(f"sessions: {{backend: redis}}\nredis: {{url: 'rediss://127.0.0.1:{server.port}/0'}}\n"
                            f"tls: {{ca_file: '{pki[0]}', ciphers: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]}}\n")
            path.chmod(0o600)
            store = open_session_store(load_config(path, {"ZEROTRUST_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}))
            try:
                if ok:
                    store.ping()
                else:
                    with pytest.raises(UnavailableError):
                        store.ping()
            finally:
                store.close()
    finally:
        good.stop()
        bad.stop()


SDK_PATHS = {
    "hashicorp": ("secrets:\n  provider: hashicorp\n  config:\n    url: https://127.0.0.1:{port}\n    auth_method: token\n    token: ${{VAULT_TOKEN}}\n    ca_file: {ca}\n    timeout: 3\n",
                  ["vault", "list"]),
    "aws-secrets": ("secrets:\n  provider: aws\n  config:\n    region: us-east-1\n    endpoint_url: https://127.0.0.1:{port}\n    ca_file: {ca}\n    timeout: 3\n",
                    ["vault", "list"]),
    "azure": ("secrets:\n  provider: azure\n  config:\n    vault_url: https://127.0.0.1:{port}\n    tenant_id: t\n    client_id: c\n    client_secret: ${{AZ_SECRET}}\n    ca_file: {ca}\n    timeout: 3\n    authority_host: https://127.0.0.1:{port}\n",
              ["vault", "list"]),
    "aws-sts": ("tls:\n  ca_file: {ca}\naws:\n  region: us-east-1\n  endpoint_url: https://127.0.0.1:{port}\n  credentials_provider: environment\n  connect_timeout: 3\n  read_timeout: 3\n  max_attempts: 1\n  allowed_accounts: ['123456789012']\n",
                ["credentials", "get", "--role-arn", "arn:aws:iam::123456789012:role/broker", "--no-cache"]),
}


@pytest.mark.parametrize("offer", ["tls11", "cbc"])
@pytest.mark.parametrize("path", sorted(SDK_PATHS))
def test_every_sdk_path_refuses_a_weak_peer(server, pki, cli, initialized, tmp_path, path, offer):
    """hvac, the Azure SDK and boto3 (Secrets Manager and STS) all go through the policy."""
    weak = server(**(TLS11_ONLY if offer == "tls11" else CBC_ONLY))
    _probe_without_policy(weak.port, pki, **(TLS11_ONLY if offer == "tls11" else CBC_ONLY))
    deadline = time.monotonic() + 5
    while not weak.handshakes and time.monotonic() < deadline:  # the server thread records the probe's handshake
        time.sleep(0.01)
    before = len(weak.handshakes)
    assert before == 1
    template, args = SDK_PATHS[path]
    config = tmp_path / "weak.yaml"
    config.write_text(template.format(port=weak.port, ca=pki[0]))
    config.chmod(0o600)
    env = {"VAULT_TOKEN": "root", "AZ_SECRET": "s", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "ZEROTRUST_AWS_ACCESS_KEY": "testing", "ZEROTRUST_AWS_SECRET_KEY": "testing"}
    result = cli("--config", str(config), *args, env=env, timeout=60)
    assert result.code == 6, (result.code, result.err)
    assert "Traceback" not in result.err
    assert len(weak.handshakes) == before, f"a handshake with the weak peer completed: {weak.handshakes[before:]}"

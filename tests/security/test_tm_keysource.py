"""Threat-model rows V1, V7 and N1: the key source comes from the configuration,
never from the vault file; the file's scrypt work factors are bounded before
any work; a Vault token never goes to a plain-http endpoint off this host.

The attacker (b) edits ``vault.db`` with sqlite3 and holds no key; the attacker
(e) runs the endpoint: a real HTTP listener on loopback that records every
request it gets. Each test runs the real CLI.
"""

from __future__ import annotations

import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import backend_missing
from tests.servers import openbao  # noqa: F401  (fixture)
from zerotrust_admin.errors import IntegrityError, UsageError
from zerotrust_admin.keys import KeySourceContext, open_configured_source
from zerotrust_admin.keys.transit import TransitKeySource
from zerotrust_admin.vaultapi.endpoint import check_url

TOKEN = "s.operator-token-not-for-you"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class Listener:
    """The attacker's endpoint: records method, path, headers and body of every
    request (any method) and answers 500."""

    def __init__(self):
        self.requests: list[dict] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                listener.requests.append({"method": self.command, "path": self.path,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_HEAD = do_CONNECT = _record

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def saw_token(self) -> bool:
        return any(TOKEN in (json.dumps(r["headers"]) + r["body"].decode("latin-1")) for r in self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    made: list[Listener] = []

    def make() -> Listener:
        made.append(Listener())
        return made[-1]

    yield make
    for one in made:
        one.close()


def write_config(zt_env: dict, text: str) -> Path:
    path = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def edit_meta(home: Path, **values) -> None:
    """What attacker (b) does: rewrite meta records with sqlite3, no key needed."""
    conn = sqlite3.connect(home / "vault.db")
    with conn:
        for key, value in values.items():
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
    conn.close()


def read_meta(home: Path) -> dict:
    conn = sqlite3.connect(home / "vault.db")
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def transit_block(url: str, *, key_name: str = "zerotrust-master") -> str:
    return (f"encryption:\n  transit:\n    enabled: true\n    url: {url}\n    key_name: {key_name}\n"
            f"    auth_method: token\n    token: {TOKEN}\n    timeout: 2\n")


@pytest.fixture
def keyfile_home(cli, zt_env):
    assert cli("init").code == 0
    r = cli("vault", "put", "db/password", input=b"the real value")
    assert r.code == 0, r.err
    return Path(zt_env["ZEROTRUST_HOME"])


# --- V1: the vault file chooses its own key source --------------------------------
def test_v1_keyfile_vault_switched_to_transit_contacts_nobody(cli, keyfile_home, listener):
    attacker = listener()
    edit_meta(keyfile_home, master_source="transit",
              master_params=json.dumps({"url": attacker.url, "mount": "transit", "key_name": "zerotrust-master"}))
    env = {"VAULT_TOKEN": TOKEN, "VAULT_ADDR": attacker.url}
    for argv in (("vault", "get", "db/password"), ("vault", "put", "db/password"), ("keys", "status")):
        r = cli(*argv, input=b"sealed under their key?", env=env)
        assert r.code == 5, (argv, r.code, r.err)
        assert "records key source transit" in r.err and "configuration says keyfile" in r.err, r.err
        assert b"the real value" not in r.out
    assert attacker.requests == [] and not attacker.saw_token()


def test_v1_transit_url_in_the_file_is_never_used(cli, keyfile_home, listener, zt_env):
    configured, attacker = listener(), listener()
    write_config(zt_env, transit_block(configured.url))
    edit_meta(keyfile_home, master_source="transit",
              master_params=json.dumps({"url": attacker.url, "mount": "transit", "key_name": "zerotrust-master"}))
    r = cli("vault", "get", "db/password", env={"VAULT_TOKEN": TOKEN})
    assert r.code == 5, r.err
    assert f"records key source transit at {attacker.url}" in r.err and f"configuration says transit at {configured.url}" in r.err
    assert attacker.requests == [] and configured.requests == []  # refused before any network call

    # The library: from the records only the key id is taken; the URL is the configuration's.
    kctx = KeySourceContext(config={"encryption": {"transit": {"enabled": True, "url": configured.url, "token": TOKEN}}},
                            home=keyfile_home, environ={"VAULT_ADDR": attacker.url})
    source = TransitKeySource.open(kctx, {"key_id": "k1", "url": attacker.url, "mount": "evil", "key_name": "theirs"})
    assert (source.url, source.mount, source.key_name, source.key_id) == (configured.url, "transit", "zerotrust-master", "k1")
    with pytest.raises(IntegrityError):
        open_configured_source(kctx, "transit", {"key_id": "k1", "url": attacker.url, "mount": "transit", "key_name": "zerotrust-master"})
    assert attacker.requests == [] and configured.requests == []


def test_v1_transit_vault_opens_only_at_the_configured_endpoint(cli, zt_env, openbao, listener):
    """A real transit vault (OpenBao): works; its recorded URL edited to the
    attacker's -> exit 5 with nothing sent; the genuine record back -> works."""
    attacker = listener()
    write_config(zt_env, "encryption:\n  transit:\n    enabled: true\n"
                 f"    url: {openbao.url}\n    key_name: zt-tm-{os.urandom(3).hex()}\n    role_id: {openbao.role_id}\n"
                 f"    secret_id: {openbao.new_secret_id()}\n    timeout: 5\n")
    r = cli("init", "--json")
    assert r.code == 0 and json.loads(r.out)["master_source"] == "transit", r.err
    home = Path(zt_env["ZEROTRUST_HOME"])
    assert cli("vault", "put", "app/key", input=b"behind transit").code == 0
    genuine = read_meta(home)["master_params"]
    assert json.loads(genuine)["url"] == openbao.url
    edit_meta(home, master_params=json.dumps({**json.loads(genuine), "url": attacker.url}))
    r = cli("vault", "get", "app/key", env={"VAULT_TOKEN": TOKEN})
    assert r.code == 5 and "records key source transit at " + attacker.url in r.err, r.err
    assert attacker.requests == []
    edit_meta(home, master_params=genuine)
    r = cli("vault", "get", "app/key")
    assert r.code == 0 and r.out == b"behind transit", r.err


def _marker_module(tmp_path: Path) -> tuple[Path, Path]:
    """A shared object that, when loaded, creates a marker file (its constructor runs at dlopen)."""
    marker = tmp_path / "module-was-loaded"
    src = tmp_path / "evil.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void pwn(void) {\n'
                   f'  FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("loaded", f); fclose(f); }}\n}}\n')
    lib = tmp_path / "libevil-pkcs11.so"
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError):
        backend_missing("a C compiler (gcc, libc6-dev) to build the marker module")
    # The marker works: loading the library does leave it.
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(lib)!r})"], check=True, timeout=60)
    assert marker.exists()
    marker.unlink()
    return lib, marker


@pytest.mark.parametrize("hsm_configured", [False, True], ids=["no-hsm-in-config", "hsm-in-config"])
def test_v1_pkcs11_module_from_the_file_is_never_loaded(cli, keyfile_home, zt_env, tmp_path, hsm_configured):
    lib, marker = _marker_module(tmp_path)
    if hsm_configured:
        pin = tmp_path / "pin"
        pin.write_text("123456")
        os.chmod(pin, 0o600)
        write_config(zt_env, "encryption:\n  hsm:\n    enabled: true\n    provider: pkcs11\n"
                     f"    config: {{module: {SOFTHSM_MODULE}, token_label: zt-test, pin_file: {pin}, key_label: zt-master}}\n")
    edit_meta(keyfile_home, master_source="pkcs11", master_params=json.dumps(
        {"provider": "pkcs11", "module": str(lib), "library": str(lib), "token_label": "zt-test", "key_label": "zt-master"}))
    r = cli("vault", "get", "db/password", env={"ZEROTRUST_HSM_PIN": "123456"})
    assert r.code == 5, r.err
    assert "records key source pkcs11" in r.err, r.err
    assert not marker.exists(), "the vault file made the tool load a library"


def test_v1_pkcs11_token_and_label_come_from_the_configuration(tmp_path):
    """Library level: a recorded key label or token that differs from encryption.hsm
    is refused before the module is loaded or a PIN is read."""
    config = {"encryption": {"hsm": {"enabled": True, "provider": "pkcs11", "config": {
        "module": str(tmp_path / "no-such-module.so"), "token_label": "zt-test", "key_label": "zt-master", "pin_file": str(tmp_path / "no-pin")}}}}
    kctx = KeySourceContext(config=config, home=tmp_path, environ={})
    genuine = {"key_id": "k1", "provider": "pkcs11", "token_label": "zt-test", "key_label": "zt-master"}
    for edit in ({"key_label": "other-app-key"}, {"token_label": "payments"}, {"provider": "aws-cloudhsm"}, {"module": "/tmp/x.so"}):
        with pytest.raises(IntegrityError):
            open_configured_source(kctx, "pkcs11", {**genuine, **edit})
    with pytest.raises(IntegrityError):
        open_configured_source(KeySourceContext(config={}, home=tmp_path, environ={}), "pkcs11", genuine)


def test_v1_local_sources_stay_interchangeable_and_unknown_kinds_are_refused(cli, keyfile_home, zt_env):
    key = (keyfile_home / "master.key").read_text().strip()
    # The same key given as ZEROTRUST_ENCRYPTION_KEY opens the key-file vault (the key check value decides).
    r = cli("vault", "get", "db/password", env={"ZEROTRUST_ENCRYPTION_KEY": key})
    assert r.code == 0 and r.out == b"the real value", r.err
    genuine = read_meta(keyfile_home)
    edit_meta(keyfile_home, master_source="plugin-of-theirs")
    r = cli("vault", "get", "db/password")
    assert r.code == 5 and "unknown key source" in r.err, r.err
    edit_meta(keyfile_home, master_source="keyfile", master_params=json.dumps({"url": "http://127.0.0.1:9/"}))
    r = cli("vault", "get", "db/password")
    assert r.code == 5, r.err
    edit_meta(keyfile_home, master_source=genuine["master_source"], master_params=genuine["master_params"])
    assert cli("vault", "get", "db/password").out == b"the real value"


def test_v1_retiring_record_cannot_name_a_file_to_delete(cli, keyfile_home, tmp_path):
    """An interrupted-rotation record that points at some other key file: the
    recovery refuses (exit 5) and deletes nothing."""
    from zerotrust_admin.crypto import random_key
    from zerotrust_admin.keys.raw import RawKeySource
    from zerotrust_admin.secret import Secret
    from zerotrust_admin.vault import format as fmt
    import base64

    victim_key = random_key()
    victim = tmp_path / "other-app" / "master.key"
    victim.parent.mkdir(mode=0o700)
    victim.write_bytes(base64.b64encode(victim_key) + b"\n")
    os.chmod(victim, 0o600)
    vault_id = read_meta(keyfile_home)["vault_id"]
    kcv = RawKeySource(Secret(victim_key), "old1", "x").wrap(fmt.KCV_PLAINTEXT, fmt.kcv_aad(vault_id, "old1")).hex()
    edit_meta(keyfile_home, master_retiring=json.dumps({"kind": "keyfile", "key_id": "old1", "kcv": kcv, "path": str(victim)}))
    r = cli("rotate-keys")
    assert r.code == 5, r.err
    assert victim.exists(), "a vault record made the tool delete a file it does not own"


# --- V7: work factors chosen by the file -----------------------------------------------
@pytest.fixture
def passphrase_home(cli, zt_env):
    env = {"ZEROTRUST_PASSPHRASE": "correct horse battery staple"}
    r = cli("init", "--passphrase", env=env)
    assert r.code == 0, r.err
    assert cli("vault", "put", "db/password", input=b"pp value", env=env).code == 0
    return Path(zt_env["ZEROTRUST_HOME"]), env


@pytest.mark.parametrize("edit", [{"n": 2**22}, {"n": 2**30}, {"n": 3 * 2**12}, {"r": 16}, {"p": 4}, {"n": 2**9}],
                         ids=["n=2^22", "n=2^30", "n-not-power-of-two", "r=16", "p=4", "n=2^9"])
def test_v7_master_params_work_factors_refused_before_any_work(cli, passphrase_home, edit):
    home, env = passphrase_home
    params = json.loads(read_meta(home)["master_params"])
    params["kdf"].update(edit)
    edit_meta(home, master_params=json.dumps(params))
    started = time.monotonic()
    r = cli("vault", "get", "db/password", env=env)
    elapsed = time.monotonic() - started
    assert r.code == 5, r.err
    assert "passphrase parameters are refused" in r.err, r.err
    assert elapsed < 2.0, f"took {elapsed:.2f} s: work was done before the bounds check"


def test_v7_genuine_passphrase_vault_still_opens(cli, passphrase_home):
    home, env = passphrase_home
    r = cli("vault", "get", "db/password", env=env)
    assert r.code == 0 and r.out == b"pp value", r.err


# --- N1: no token over plain http to another host ---------------------------------------
@pytest.mark.parametrize("url", ["http://192.0.2.10:8200", "http://vault.example.com:8200", "http://localhost.example.com",
                                 "http://127.0.0.1.nip.io:8200", "ftp://127.0.0.1/"])
def test_n1_plain_http_transit_url_refused_before_connecting(cli, zt_env, url):
    write_config(zt_env, transit_block(url))
    started = time.monotonic()
    r = cli("init")
    assert r.code == 2, r.err
    assert "encryption.transit.url" in r.err, r.err
    assert time.monotonic() - started < 5  # no connection attempt (192.0.2.10 would hang until the timeout)
    assert not (Path(zt_env["ZEROTRUST_HOME"]) / "vault.db").exists()


@pytest.mark.parametrize("url", ["http://192.0.2.10:8200", "http://vault.example.com"])
def test_n1_plain_http_hashicorp_provider_refused(cli, zt_env, url):
    write_config(zt_env, f"secrets:\n  provider: hashicorp\n  config: {{url: '{url}', mount_path: kv, token: {TOKEN}, timeout: 2}}\n")
    for argv in (("vault", "get", "app/key"), ("vault", "list")):
        r = cli(*argv)
        assert r.code == 2, (argv, r.err)
        assert "plain http" in r.err and TOKEN not in r.err, r.err


def test_n1_loopback_http_is_the_only_exception(cli, zt_env, listener):
    local = listener()
    write_config(zt_env, f"secrets:\n  provider: hashicorp\n  config: {{url: '{local.url}', mount_path: kv, token: {TOKEN}, timeout: 2}}\n")
    r = cli("vault", "get", "app/key")
    assert r.code == 6, r.err  # reached the (loopback) server, which failed: not refused by N1
    assert local.requests
    for ok in ("https://vault.example.com:8200/", "http://127.0.0.1:8200", "http://127.8.9.10", "http://[::1]:8200", "http://localhost:8200"):
        assert check_url(ok, "x.url") == ok.rstrip("/")
    for bad in ("http://10.0.0.1:8200", "http://[::ffff:127.0.0.1]:8200", "http://0.0.0.0:8200", "vault.example.com:8200", "https://"):
        with pytest.raises(UsageError):
            check_url(bad, "x.url")


# --- N2 (the Vault API only): huge or malformed bodies from a hostile endpoint ---------
class Hostile:
    """A loopback 'Vault' that answers every request with ``status`` and ``body``;
    ``declared`` overrides Content-Length; ``stream`` sends that many bytes chunked."""

    def __init__(self, body: bytes = b"", status: int = 200, declared: int | None = None, stream: int = 0, headers: dict | None = None):
        self.requests = 0
        hostile = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                hostile.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    if stream:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        chunk = b"A" * (1 << 20)
                        for _ in range(stream // len(chunk)):
                            self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_LIST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HOSTILE = {
    "declared-100MiB": dict(body=b"{}", declared=100 << 20),
    "streamed-24MiB": dict(stream=24 << 20),
    "not-json": dict(body=b"<html>hello</html>"),
    "json-not-object": dict(body=b"[1, 2, 3]"),
    "wrong-types": dict(body=b'{"data": {"data": [1], "metadata": "x"}, "auth": "nope"}'),
}


@pytest.mark.parametrize("answer", list(HOSTILE), ids=list(HOSTILE))
def test_n2_hostile_vault_bodies_are_refused_exit_6(cli, zt_env, answer):
    server = Hostile(**HOSTILE[answer])
    try:
        write_config(zt_env, f"secrets:\n  provider: hashicorp\n  config: {{url: '{server.url}', mount_path: kv, token: {TOKEN}, timeout: 5}}\n")
        # the stdlib read path, the hvac path (an older version), and hvac's LIST
        for argv in (("vault", "get", "app/key"), ("vault", "get", "app/key", "--version", "1"), ("vault", "list")):
            r = cli(*argv, timeout=60)
            assert r.code == 6, (answer, argv, r.code, r.err)
            assert "refused" in r.err and "Traceback" not in r.err, r.err
        assert server.requests
        # the transit key source: init asks for the key and gets the same answers
        write_config(zt_env, transit_block(server.url))
        r = cli("init", timeout=60)
        assert r.code == 6, (answer, r.code, r.err)
    finally:
        server.close()


def test_n1_redirect_does_not_carry_the_token_elsewhere(cli, zt_env, listener):
    """A Vault answer 307 to a plain-http URL elsewhere: the token is not sent there."""
    elsewhere = listener()
    server = Hostile(status=307, headers={"Location": elsewhere.url + "/v1/kv/data/app/key"})
    try:
        write_config(zt_env, f"secrets:\n  provider: hashicorp\n  config: {{url: '{server.url}', mount_path: kv, token: {TOKEN}, timeout: 5}}\n")
        for argv in (("vault", "get", "app/key"), ("vault", "get", "app/key", "--version", "1"), ("vault", "list")):
            r = cli(*argv)
            assert r.code in (2, 6), (argv, r.code, r.err)
        assert server.requests and elsewhere.requests == [] and not elsewhere.saw_token()
    finally:
        server.close()


# --- N1 through a proxy from the environment ------------------------------------------
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@pytest.mark.parametrize("var", PROXY_VARS)
def test_n1_plain_http_vault_ignores_environment_proxies(cli, zt_env, listener, var):
    """The red team's finding: hvac/requests honoured HTTP_PROXY & co. and sent
    X-Vault-Token in clear to the proxy. The proxy (a real listener) must get
    nothing; the loopback Vault gets the requests directly."""
    proxy, vault = listener(), listener()
    env = {var: proxy.url, "NO_PROXY": "", "no_proxy": ""}
    write_config(zt_env, f"secrets:\n  provider: hashicorp\n  config: {{url: '{vault.url}', mount_path: kv, token: {TOKEN}, timeout: 2}}\n")
    for argv, stdin in ((("vault", "list"), None), (("vault", "put", "app/key"), b"v"), (("config", "check", "--connect"), None)):
        r = cli(*argv, input=stdin, env=env)
        assert r.code in (1, 6), (argv, r.code, r.err)  # the loopback Vault answered 500: reached directly
        assert TOKEN not in r.err
    assert vault.requests and vault.saw_token()  # the real endpoint was used...
    assert proxy.requests == [] and not proxy.saw_token()  # ...and the proxy heard nothing


@pytest.mark.parametrize("var", ("HTTP_PROXY", "ALL_PROXY"))
def test_n1_plain_http_transit_ignores_environment_proxies(cli, zt_env, listener, var):
    proxy, vault = listener(), listener()
    write_config(zt_env, transit_block(vault.url))
    r = cli("init", env={var: proxy.url, "NO_PROXY": "", "no_proxy": ""})
    assert r.code == 6, r.err
    assert vault.requests and proxy.requests == [] and not proxy.saw_token()
    assert not (Path(zt_env["ZEROTRUST_HOME"]) / "vault.db").exists()


def test_n1_https_goes_through_a_connect_proxy_that_never_sees_the_token(cli, zt_env, listener):
    """Documented choice (docs/providers.md): an https endpoint keeps HTTPS_PROXY;
    the proxy gets only "CONNECT host:port" (TLS runs inside the tunnel), never the token."""
    proxy = listener()
    write_config(zt_env, f"secrets:\n  provider: hashicorp\n  config: {{url: 'https://vault.example.com:8200', mount_path: kv, token: {TOKEN}, timeout: 2}}\n")
    r = cli("vault", "list", env={"HTTPS_PROXY": proxy.url, "NO_PROXY": "", "no_proxy": ""})
    assert r.code == 6, r.err
    assert [(q["method"], q["path"]) for q in proxy.requests] == [("CONNECT", "vault.example.com:8200")]
    assert not proxy.saw_token()

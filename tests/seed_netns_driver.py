"""Run one of the seed's Python examples against the very names it uses:
``/etc/zerotrust/config.yaml`` and ``https://vault.example.com:8200``.

Started by tests/test_seed_python_examples.py under ``unshare --user
--map-root-user --mount --net``: a private mount and network namespace, so
nothing of the host changes. Inside it this script brings loopback up, lays a
writable overlay over /etc (``/etc/hosts`` maps vault.example.com to 127.0.0.1;
``/etc/zerotrust/config.yaml`` is the deployment's config file), starts a real
OpenBao server (not dev mode) on 127.0.0.1:8200 with a TLS certificate for
vault.example.com from a test CA, initialises and unseals it, enables KV v2 at
``secret`` and AppRole, stores ``redis/password``, then runs the example in a
child Python with VAULT_ROLE_ID / VAULT_SECRET_ID set and prints one JSON line
with its outcome. The only stand-in is the name service: vault.example.com is
loopback in this namespace's /etc/hosts.

Input (stdin, JSON): code, workdir, env (for the example), config (YAML text),
redis_password, bao (the binary).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def _cert(directory: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zerotrust seed test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault.example.com")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("vault.example.com")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(paths[2], 0o600)
    return paths


def _wait_port(port: int, proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bao server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("bao server did not listen on 8200")


def main() -> int:
    job = json.loads(sys.stdin.read())
    work = Path(job["workdir"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    upper, lower_work = work / "etc-upper", work / "etc-work"
    upper.mkdir(parents=True)
    lower_work.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/etc,upperdir={upper},workdir={lower_work}", "/etc"], check=True)
    Path("/etc/hosts").write_text("127.0.0.1 localhost\n127.0.0.1 vault.example.com\n")
    ca, cert, key = _cert(work / "pki")
    etc = Path("/etc/zerotrust")
    etc.mkdir(mode=0o700, exist_ok=True)
    config = etc / "config.yaml"
    config.write_text(job["config"].replace("@CA@", str(ca)))
    os.chmod(config, 0o600)
    hcl = work / "bao.hcl"
    hcl.write_text(f'storage "inmem" {{}}\nlistener "tcp" {{\n  address = "127.0.0.1:8200"\n  tls_cert_file = "{cert}"\n'
                   f'  tls_key_file = "{key}"\n}}\ndisable_mlock = true\napi_addr = "https://vault.example.com:8200"\n')
    bao = subprocess.Popen([job["bao"], "server", f"-config={hcl}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, HOME=str(work)), cwd=str(work))
    try:
        _wait_port(8200, bao)
        import hvac

        url = "https://vault.example.com:8200"
        client = hvac.Client(url=url, verify=str(ca), timeout=10)
        for _ in range(100):
            try:
                init = client.sys.initialize(secret_shares=1, secret_threshold=1)
                break
            except Exception:  # noqa: BLE001  (the listener is up before the core is)
                time.sleep(0.1)
        client.sys.submit_unseal_key(init["keys"][0])
        client.token = init["root_token"]
        for _ in range(100):
            if not client.sys.is_sealed():
                break
            time.sleep(0.1)
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy("app", 'path "secret/*" { capabilities = ["read", "list"] }\n')
        client.auth.approle.create_or_update_approle("app", token_policies=["app"], token_ttl="10m")
        role_id = client.auth.approle.read_role_id("app")["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id("app")["data"]["secret_id"]
        client.secrets.kv.v2.create_or_update_secret("redis/password", secret={"value": job["redis_password"]}, mount_point="secret")
        env = dict(job["env"], VAULT_ROLE_ID=role_id, VAULT_SECRET_ID=secret_id)
        proc = subprocess.run([sys.executable, "-c", job["code"]], env=env, cwd=str(work), capture_output=True, timeout=120)
        print(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout.decode(errors="replace"),
                          "stderr": proc.stderr.decode(errors="replace")[-3000:]}))
        return 0
    finally:
        bao.terminate()
        try:
            bao.wait(10)
        except subprocess.TimeoutExpired:
            bao.kill()


if __name__ == "__main__":
    sys.exit(main())

"""Outages: every backend stopped (connection refused) or silent (accepts the
connection and never answers). Each command must end within a bounded time
with one clear error line and exit 6, never hang and never print a traceback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.servers import free_port

BOUND_SECONDS = 25  # the configured timeouts below are 2 s; retries and start-up fit well inside


class BlackHole:
    """Accepts TCP connections and never answers (a hung peer)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except OSError:
                continue

    def close(self):
        self._stop = True
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def blackhole():
    hole = BlackHole()
    yield hole
    hole.close()


def _config(tmp_path, body: str):
    path = tmp_path / "outage.yaml"
    path.write_text(body)
    path.chmod(0o600)
    return str(path)


CASES = {
    "redis": ("sessions:\n  backend: redis\nredis:\n  url: redis://127.0.0.1:{port}/0\n  connect_timeout: 2\n  socket_timeout: 2\n",
              ["sessions", "list"]),
    "hashicorp": ("secrets:\n  provider: hashicorp\n  config:\n    url: http://127.0.0.1:{port}\n    auth_method: token\n    token: ${{VAULT_TOKEN}}\n    timeout: 2\n",
                  ["vault", "get", "db/password"]),
    "aws-secrets": ("secrets:\n  provider: aws\n  config:\n    region: us-east-1\n    endpoint_url: http://127.0.0.1:{port}\n    timeout: 2\n",
                    ["vault", "get", "db/password"]),
    "aws-sts": ("aws:\n  region: us-east-1\n  endpoint_url: http://127.0.0.1:{port}\n  credentials_provider: environment\n  connect_timeout: 2\n  read_timeout: 2\n  max_attempts: 2\n  allowed_accounts: ['123456789012']\n",
                ["credentials", "get", "--role-arn", "arn:aws:iam::123456789012:role/broker", "--no-cache"]),
    "smtp": ("security:\n  breach_notification:\n    enabled: true\n    retries: 1\n    timeout_seconds: 2\n    channels:\n      - email: {{recipients: [sec@example.com], sender: zt@example.com, smtp_host: 127.0.0.1, smtp_port: {port}, starttls: false}}\n",
             ["notify", "test", "--channel", "email"]),
    "webhook": ("security:\n  breach_notification:\n    enabled: true\n    retries: 1\n    timeout_seconds: 2\n    channels:\n      - webhook: {{url: 'http://127.0.0.1:{port}/hook', secret: '${{HOOK_KEY}}'}}\n",
                ["notify", "test", "--channel", "webhook"]),
}
ENV = {"VAULT_TOKEN": "root", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "ZEROTRUST_AWS_ACCESS_KEY": "testing", "ZEROTRUST_AWS_SECRET_KEY": "testing", "HOOK_KEY": "k" * 32}


@pytest.mark.parametrize("mode", ["stopped", "silent"])
@pytest.mark.parametrize("backend", sorted(CASES))
def test_backend_outage_is_bounded_and_clear(cli, initialized, tmp_path, blackhole, backend, mode):
    port = free_port() if mode == "stopped" else blackhole.port
    template, args = CASES[backend]
    config = _config(tmp_path, template.format(port=port))
    started = time.monotonic()
    result = cli("--config", config, *args, env=ENV, timeout=BOUND_SECONDS + 30)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS, f"{backend} {mode}: took {elapsed:.1f} s"
    assert result.code == 6, (result.code, result.err)
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("zerotrust-admin: error:")]
    assert len(errors) <= 1 and (errors or "fail" in result.err.lower()), result.err

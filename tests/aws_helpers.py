"""Helpers shared by the AWS test modules: a config writer and a recording,
throttling HTTP proxy in front of the moto server (wire level only)."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import yaml

ACCOUNT = "123456789012"


def role_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def write_config(path: Path, aws: dict, **sections) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"aws": aws, **sections}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


def aws_env(moto) -> dict:
    return {"ZEROTRUST_AWS_ACCESS_KEY": moto.KEY_ID, "ZEROTRUST_AWS_SECRET_KEY": moto.SECRET}


def base_aws(endpoint: str, **extra) -> dict:
    block = {"region": "us-east-1", "endpoint_url": endpoint, "credentials_provider": "environment",
             "connect_timeout": 2, "read_timeout": 5, "retry_base_seconds": 0.01}
    block.update(extra)
    return block


THROTTLE_XML = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                b'<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>zt-test</RequestId></ErrorResponse>')


class RecordingProxy:
    """Forwards every request to ``upstream`` and records the form bodies;
    answers the first ``throttle`` requests with an STS Throttling error."""

    def __init__(self, upstream: str, throttle: int = 0):
        self.upstream = upstream
        self.throttle = throttle
        self.requests: list[dict] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append({k: v[0] for k, v in parse_qs(body.decode()).items()})
                if proxy.throttle > 0:
                    proxy.throttle -= 1
                    self.send_response(400)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(THROTTLE_XML)))
                    self.end_headers()
                    self.wfile.write(THROTTLE_XML)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "text/xml")
                except urllib.error.HTTPError as exc:
                    status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "text/xml")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def assume_calls(self) -> list[dict]:
        return [r for r in self.requests if r.get("Action") == "AssumeRole"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def audit_records(home: Path) -> list[dict]:
    path = home / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

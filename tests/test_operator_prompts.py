"""Issue 14, item 3: a passphrase or MFA code is asked on the controlling
terminal (/dev/tty) when stdin carries data, as gpg, ssh and sudo do.

The CLI runs on a real pseudo-terminal that is its controlling terminal
(setsid + TIOCSCTTY), with stdin a pipe: ``printf x | zerotrust-admin ...``."""

from __future__ import annotations

import base64
import json
import time

from tests.operator_pty import run_in_pty
from zerotrust_admin.mfa import totp

PHRASE = "correct horse battery staple"


def test_piped_value_on_a_passphrase_vault_asks_the_passphrase_on_the_terminal(cli, zt_env):
    assert cli("init", "--passphrase", env={"ZEROTRUST_PASSPHRASE": PHRASE}).code == 0
    r = run_in_pty(["vault", "put", "p/two"], zt_env, stdin_data=b"x", answers=[("Vault passphrase:", PHRASE.encode() + b"\n")])
    assert r.code == 0, r.screen
    assert "Vault passphrase:" in r.screen and PHRASE not in r.screen  # asked, hidden
    assert "Stored p/two version 1 (1 bytes)" in r.screen
    got = cli("vault", "get", "p/two", env={"ZEROTRUST_PASSPHRASE": PHRASE})
    assert got.code == 0 and got.out == b"x"  # the value came from stdin, the passphrase from the terminal


def test_without_a_controlling_terminal_the_error_is_unchanged(cli, zt_env):
    assert cli("init", "--passphrase", env={"ZEROTRUST_PASSPHRASE": PHRASE}).code == 0
    r = cli("vault", "put", "p/two", input=b"x")  # the cli fixture runs without a controlling terminal
    assert r.code == 2 and "no terminal is available" in r.err and "ZEROTRUST_PASSPHRASE" in r.err


def test_mfa_code_is_asked_on_the_terminal_when_stdin_and_stdout_are_pipes(cli, initialized, zt_env):
    enrolled = json.loads(cli("mfa", "enroll", "--json").text)["secret_base32"]
    seed = base64.b32decode(enrolled + "=" * (-len(enrolled) % 8))
    assert cli("vault", "put", "prod/db", "--sensitive", input=b"s3cret-value").code == 0
    if time.time() % 30 > 25:  # a code that straddles a step boundary
        time.sleep(30 - time.time() % 30 + 0.2)
    code = totp.totp(seed, time.time())
    r = run_in_pty(["vault", "get", "prod/db"], zt_env, stdin_data=b"", stdout_pipe=True, answers=[("MFA code:", code.encode() + b"\n")])
    assert r.code == 0, r.screen
    assert "MFA code:" in r.screen and code not in r.screen
    assert r.stdout == b"s3cret-value"

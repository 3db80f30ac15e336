"""Issue 14, "Minor and polish": one test per item."""

from __future__ import annotations

import json

import pytest


def test_json_mode_errors_are_one_json_object_on_stderr(cli, initialized):
    r = cli("vault", "get", "nope", "--json")
    assert r.code == 3 and r.out == b""
    assert json.loads(r.err) == {"error": {"code": 3, "kind": "not_found", "message": "secret 'nope' not found",
                                           "hint": "list secrets with: zerotrust-admin vault list"}}
    usage = cli("--json", "vault", "get", "--bogus")
    assert usage.code == 2 and json.loads(usage.err)["error"]["kind"] == "usage"
    plain = cli("vault", "get", "nope")
    assert plain.err.startswith("zerotrust-admin: error: secret 'nope' not found")


def test_vault_delete_without_a_terminal_needs_yes(cli, initialized):
    assert cli("vault", "put", "app/x", input=b"v").code == 0
    r = cli("vault", "delete", "app/x")  # stdin is not a terminal (the fixture pipes b"")
    assert r.code == 2 and "--yes" in r.err
    assert cli("vault", "get", "app/x").out == b"v"
    assert cli("vault", "delete", "app/x", "--yes").code == 0
    assert cli("vault", "get", "app/x").code == 3


def test_undelete_of_a_live_secret_says_nothing_changed(cli, initialized):
    assert cli("vault", "put", "app/x", input=b"v").code == 0
    r = cli("vault", "undelete", "app/x")
    assert r.code == 0 and "app/x is not deleted; nothing changed" in r.err and "Restored" not in r.err
    assert json.loads(cli("vault", "undelete", "app/x", "--json").text) == {"name": "app/x", "restored": False, "deleted": False}
    assert cli("vault", "delete", "app/x", "--yes").code == 0
    assert "Restored app/x" in cli("vault", "undelete", "app/x").err


def test_audit_search_refuses_an_unknown_event_and_says_when_nothing_matched(cli, initialized):
    r = cli("audit", "search", "--event", "sesion_revocation")
    assert r.code == 2 and "unknown audit event 'sesion_revocation' (did you mean 'session_revocation'?)" in r.err
    assert "known events:" in r.err and "credential_revocation" in r.err
    known = cli("audit", "search", "--event", "session_revocation")
    assert known.code == 0 and known.out == b"" and "no records matched" in known.err
    found = cli("audit", "search", "--event", "key_rotation", "--json")
    assert found.code == 0 and found.text.strip()


def test_a_garbage_master_key_says_restore_it_from_backup(cli, initialized):
    (initialized / "master.key").write_bytes(b"garbage")
    r = cli("vault", "list")
    assert r.code == 2 and "is not a base64-encoded 32-byte key" in r.err
    assert "restore the key from your backup" in r.err and "cannot open an existing vault" in r.err


def test_zerotrust_home_that_is_a_file_is_one_clear_line(cli, tmp_path):
    home = tmp_path / "file"
    home.write_text("")
    r = cli("vault", "list", env={"ZEROTRUST_HOME": str(home)})
    assert r.code == 2 and r.err.splitlines()[0] == f"zerotrust-admin: error: ZEROTRUST_HOME {home} is not a directory"
    assert "internal error" not in r.err


# --- one "aborted; nothing was changed" line, on a real terminal ---------------------
from tests.operator_pty import run_in_pty  # noqa: E402


def last_line(screen: str) -> str:
    return [line for line in screen.splitlines() if line.strip()][-1]


def test_ctrl_d_at_a_value_prompt(initialized, zt_env, cli):
    r = run_in_pty(["vault", "put", "app/x"], zt_env, answers=[("Secret value:", b"\x04")])
    assert r.code == 1 and last_line(r.screen) == "zerotrust-admin: error: aborted; nothing was changed", r.screen
    assert cli("vault", "get", "app/x").code == 3


def test_ctrl_c_at_a_value_prompt_ends_the_line_first(initialized, zt_env):
    r = run_in_pty(["vault", "put", "app/x"], zt_env, answers=[("Secret value:", b"\x03")])
    assert r.code == 130 and last_line(r.screen) == "zerotrust-admin: error: aborted; nothing was changed", r.screen


def test_declining_a_confirmation(initialized, zt_env, cli):
    assert cli("vault", "put", "app/x", input=b"v").code == 0
    r = run_in_pty(["vault", "export"], zt_env, answers=[("[y/N]", b"n\n")])
    assert r.code == 1 and last_line(r.screen) == "zerotrust-admin: error: aborted; nothing was changed", r.screen
    r = run_in_pty(["vault", "delete", "app/x"], zt_env, answers=[("[y/N]", b"\x04")])
    assert r.code == 1 and last_line(r.screen) == "zerotrust-admin: error: aborted; nothing was changed", r.screen
    assert cli("vault", "get", "app/x").out == b"v"


def test_mismatched_values_have_a_hint(initialized, zt_env):
    r = run_in_pty(["vault", "put", "app/x"], zt_env, answers=[("Secret value:", b"one\n"), ("(again):", b"two\n")])
    assert r.code == 2 and "the two values do not match; nothing was written" in r.screen
    assert "hint: type the same value twice, or pipe it on stdin" in r.screen


def test_ctrl_c_during_a_large_import_says_nothing_was_imported(initialized, zt_env, cli, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.env"
    big.write_text("".join(f"K{i}=value-{i}\n" for i in range(60_000)))
    proc = subprocess.Popen([sys.executable, "-m", "zerotrust_admin", "vault", "import", str(big)], env=zt_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(2.5)
    assert proc.poll() is None, "the import finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode().splitlines()[-1] in ("zerotrust-admin: error: interrupted; nothing imported (the import is one transaction)",
                                             "zerotrust-admin: error: interrupted")
    assert json.loads(cli("vault", "list", "--json").text) == []


def test_a_new_name_starting_with_a_dash_is_refused(cli, initialized, tmp_path):
    r = cli("vault", "put", "--", "-x", input=b"v")
    assert r.code == 2 and "starts with '-'" in r.err and "vault get -- -x" in r.err
    env = tmp_path / "in.env"
    env.write_text("OK=1\n-x=2\n")
    r = cli("vault", "import", str(env), "--dry-run")
    assert r.code == 2 and f"{env} line 2: secret name '-x' starts with '-'" in r.err
    assert json.loads(cli("vault", "list", "--json").text) == []


def test_one_line_errors_are_not_wrapped_on_a_narrow_terminal(initialized, zt_env, cli):
    assert cli("vault", "put", "some/rather/long/binary/secret/name", input=b"\xff\x00").code == 0
    r = run_in_pty(["vault", "get", "some/rather/long/binary/secret/name"], zt_env, cols=60)
    assert r.code == 2
    assert r.screen.splitlines()[0] == ("zerotrust-admin: error: secret 'some/rather/long/binary/secret/name' is binary "
                                        "(2 bytes); refusing to print it to a terminal")


def test_a_busy_answer_mentions_wait_and_revoke_sessions_takes_wait(cli, initialized, zt_env):
    import os
    import subprocess
    import sys
    import time

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from zerotrust_admin.config import load_config\n"
        "from zerotrust_admin.sessions.lock import distributed_lock\n"
        "with distributed_lock(load_config(), sys.argv[1], ttl=60):\n"
        "    print('held', flush=True); time.sleep(30)\n"), "rotate-keys"],
        env={**os.environ, **zt_env}, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == b"held"
        r = cli("rotate-keys", "--dek")
        assert r.code == 7 and "add --wait SECONDS" in r.err, r.err
        start = time.monotonic()
        assert cli("rotate-keys", "--dek", "--wait", "1").code == 7 and time.monotonic() - start >= 1
    finally:
        holder.kill()
        holder.wait()
    assert cli("revoke-sessions", "--all", "--yes", "--wait", "5").code == 0
    assert cli("revoke-sessions", "--all", "--yes", "--wait-lock", "5").code == 0


def test_json_is_accepted_everywhere_version_and_export_included(cli, initialized, tmp_path):
    import typer

    from zerotrust_admin import __version__
    from zerotrust_admin.cli.app import app

    def leaves(command, path):
        subs = getattr(command, "commands", None)
        if not subs:
            yield " ".join(path), command
        for name, sub in (subs or {}).items():
            yield from leaves(sub, path + [name])

    missing = [p for p, c in leaves(typer.main.get_command(app), []) if not any("--json" in o.opts for o in c.params)]
    assert missing == []
    for argv in (["--version", "--json"], ["--json", "--version"]):
        r = cli(*argv)
        assert r.code == 0 and json.loads(r.text) == {"version": __version__}
    assert cli("vault", "put", "app/x", input=b"v").code == 0
    r = cli("vault", "export", "--json", "--yes")
    assert r.code == 0 and json.loads(r.text)["secrets"] == {"app/x": {"value": "v"}}
    out = tmp_path / "e.json"
    r = cli("vault", "export", "--json", "--yes", "-o", str(out))
    assert json.loads(r.text) == {"output": str(out), "format": "json", "secrets": 1}


def test_a_large_import_shows_a_progress_bar_on_a_terminal(initialized, zt_env, cli, tmp_path):
    big = tmp_path / "big.env"
    big.write_text("".join(f"K{i}=value-{i}\n" for i in range(8_000)))
    r = run_in_pty(["vault", "import", str(big)], zt_env, cols=100)
    assert r.code == 0, r.screen
    assert "importing big.env" in r.screen and "/8000" in r.screen
    assert "8000 created" in r.screen
    assert "importing" not in cli("vault", "import", str(big)).err  # no bar without a terminal


def test_init_passphrase_warns_first_and_checks_the_length_before_the_second_entry(zt_env, cli):
    r = run_in_pty(["init", "--passphrase"], zt_env, answers=[("Vault passphrase:", b"short\n")])
    assert r.code == 2 and "the passphrase is shorter than 12 characters" in r.screen, r.screen
    assert "(again)" not in r.screen
    assert "If you lose it, what it protects cannot be opened: nobody can recover it." in r.screen
    phrase = b"correct horse battery staple\n"
    r = run_in_pty(["init", "--passphrase"], zt_env, answers=[("Vault passphrase:", phrase), ("(again):", phrase)])
    assert r.code == 0, r.screen
    assert cli("vault", "list", env={"ZEROTRUST_PASSPHRASE": "correct horse battery staple"}).code == 0


@pytest.mark.parametrize("user, fragment", [("nouser", "has no realm"), ("bob@example.com", "is not upper case")])
def test_sessions_create_warns_about_a_principal_without_an_upper_case_realm(cli, initialized, user, fragment):
    r = cli("sessions", "create", "--user", user)
    assert r.code == 0 and fragment in r.err and "warning:" in r.err
    assert "warning" not in cli("sessions", "create", "--user", "bob@EXAMPLE.COM").err


def test_put_names_the_value_limits(cli, initialized):
    r = cli("vault", "put", "app/x", input=b"")
    assert r.code == 2 and "is empty; a secret is 1 byte to 1 MiB" in r.err and "--value-file" in r.err
    r = cli("vault", "put", "app/x", input=b"x" * ((1 << 20) + 1))
    assert r.code == 2 and "is 1048577 bytes; the limit for a secret is 1 MiB (1048576 bytes)" in r.err
    assert cli("vault", "put", "app/x", input=b"x" * (1 << 20)).code == 0


def test_help_at_80_columns_cuts_nothing(zt_env):
    r = run_in_pty(["revoke-credentials", "--help"], zt_env, cols=80)
    assert r.code == 0
    assert "security.breach_notification.enabled" in r.screen and "…" not in r.screen
    assert max(len(line) for line in r.screen.splitlines()) <= 80

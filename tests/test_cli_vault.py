"""The vault through the real CLI (subprocess), the way operators and cron use it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_put_from_stdin_then_get_prints_exactly_the_value(cli, initialized):
    put = cli("vault", "put", "db/password", input=b"s3cr3t")
    assert put.code == 0, put.err
    assert put.out == b""  # diagnostics go to stderr, never the value
    assert "s3cr3t" not in put.err
    got = cli("vault", "get", "db/password")
    assert (got.code, got.out) == (0, b"s3cr3t")


def test_trailing_newline_is_part_of_the_value(cli, initialized):
    assert cli("vault", "put", "nl", input=b"with-newline\n").code == 0
    assert cli("vault", "get", "nl").out == b"with-newline\n"


def test_entry_point_script_and_python_m_agree(cli, initialized, zt_env):
    assert cli("vault", "put", "x/y", input=b"same").code == 0
    script = Path(sys.executable).parent / "zerotrust-admin"  # installed by scripts/venv.sh
    assert script.exists(), f"console script missing: {script}"
    proc = subprocess.run([str(script), "vault", "get", "x/y"], env=zt_env, capture_output=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, b"same")
    help_ = subprocess.run([sys.executable, "-m", "zerotrust_admin", "--help"], env=zt_env, capture_output=True, timeout=60)
    assert help_.returncode == 0 and b"vault" in help_.stdout


def _der_private_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.mark.parametrize("kind", ["keytab", "der"])
def test_binary_values_round_trip_through_files(cli, initialized, tmp_path, kind):
    value = os.urandom(4096) if kind == "keytab" else _der_private_key()
    if kind == "keytab":
        value = b"\x05\x02" + value[2:]  # a keytab starts with 0x0502
    src = tmp_path / f"in.{kind}"
    src.write_bytes(value)
    put = cli("vault", "put", f"krb/{kind}", "--value-file", str(src), "--json")
    assert put.code == 0, put.err
    meta = json.loads(put.out)
    assert (meta["name"], meta["version"], meta["size"]) == (f"krb/{kind}", 1, len(value))
    out = tmp_path / "out" / f"copy.{kind}"
    out.parent.mkdir()
    got = cli("vault", "get", f"krb/{kind}", "--output-file", str(out))
    assert got.code == 0, got.err
    assert got.out == b""
    assert out.read_bytes() == value
    assert mode(out) == 0o600
    piped = cli("vault", "get", f"krb/{kind}")
    assert piped.out == value


def test_output_file_replaces_a_symlink_instead_of_following_it(cli, initialized, tmp_path):
    assert cli("vault", "put", "s", input=b"secret-bytes").code == 0
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    link = tmp_path / "link"
    link.symlink_to(victim)
    assert cli("vault", "get", "s", "--output-file", str(link)).code == 0
    assert victim.read_bytes() == b"untouched"
    assert not link.is_symlink() and link.read_bytes() == b"secret-bytes"


def test_json_on_every_command(cli, initialized, tmp_path):
    put = cli("vault", "put", "app/db", "--meta", "owner=dba", "--json", input=b"v1")
    assert put.code == 0, put.err
    assert json.loads(put.out)["metadata"] == {"owner": "dba"}
    put2 = cli("--json", "vault", "put", "app/db", input=b"v2")  # global --json too
    assert json.loads(put2.out)["version"] == 2
    binary = cli("vault", "put", "app/bin", input=b"\xff\x00")
    assert binary.code == 0

    got = json.loads(cli("vault", "get", "app/db", "--json").out)
    assert (got["value"], got["version"], got["current"], got["created_by"]) == ("v2", 2, True, "alice@EXAMPLE.COM")
    old = json.loads(cli("vault", "get", "app/db", "--version", "1", "--json").out)
    assert (old["value"], old["current"]) == ("v1", False)
    raw = json.loads(cli("vault", "get", "app/bin", "--json").out)
    assert raw["value_base64"] == "/wA=" and "value" not in raw

    listed = json.loads(cli("vault", "list", "--json").out)
    assert [(i["name"], i["current_version"]) for i in listed] == [("app/bin", 1), ("app/db", 2)]
    assert all("value" not in i for i in listed)
    hist = json.loads(cli("vault", "history", "app/db", "--json").out)
    assert [(h["version"], h["current"], h["size"]) for h in hist] == [(1, False, 2), (2, True, 2)]

    deleted = cli("vault", "delete", "app/bin", "--json", "--yes")
    assert deleted.code == 0, deleted.err
    assert json.loads(deleted.out) == {"name": "app/bin", "mode": "soft", "versions_destroyed": 0}
    assert [i["name"] for i in json.loads(cli("vault", "list", "--json").out)] == ["app/db"]
    assert [i["name"] for i in json.loads(cli("vault", "list", "--deleted", "--json").out)] == ["app/bin", "app/db"]
    assert json.loads(cli("vault", "undelete", "app/bin", "--json").out) == {"name": "app/bin", "restored": True}

    dry = json.loads(cli("vault", "delete", "app/db", "--destroy", "--dry-run", "--json").out)
    assert dry["dry_run"] is True and cli("vault", "get", "app/db").out == b"v2"
    refused = cli("vault", "delete", "app/db", "--destroy", "--json")
    assert refused.code == 2 and "--yes" in refused.err
    destroyed = json.loads(cli("vault", "delete", "app/db", "--destroy", "--yes", "--json").out)
    assert destroyed == {"name": "app/db", "mode": "destroy", "versions_destroyed": 2}
    assert cli("vault", "get", "app/db").code == 3

    src = tmp_path / "in.env"
    src.write_text("A=1\nB=2\n")
    imported = cli("vault", "import", str(src), "--json")
    assert json.loads(imported.out) == {"created": 2, "updated": 0, "unchanged": 0}
    again = cli("vault", "import", str(src), "--json")
    assert json.loads(again.out) == {"created": 0, "updated": 0, "unchanged": 2}


def test_list_prefix_and_history_tables_never_show_values(cli, initialized):
    cli("vault", "import", "-", "--format", "json", input=json.dumps({"app/a": "val-aaa", "app/b": "val-bbb", "db/c": "val-ccc"}).encode())
    listed = cli("vault", "list", "app/")
    assert listed.code == 0
    assert [line.split("\t")[0] for line in listed.text.splitlines()] == ["app/a", "app/b"]
    hist = cli("vault", "history", "app/a")
    assert hist.code == 0 and "alice@EXAMPLE.COM" in hist.text
    for result in (listed, hist):
        assert b"val-" not in result.out and "val-" not in result.err


EDGE_VALUES = {
    "q/double": 'say "hi"',
    "q/single": "it's",
    "q/newline": "line1\nline2\n",
    "q/crlf": "a\r\nb",
    "q/dollar": "$HOME ${PATH} $$",
    "q/hash": "a # not a comment",
    "q/hash-start": "#starts-with-hash",
    "q/equals": "a=b=c",
    "q/backslash": "C:\\path\\n\\",
    "q/spaces": "  padded  ",
    "q/tab": "a\tb",
    "q/unicode": "naïve – ✓",
    "q/mixed": "'\"$#=\\\n",
}


def test_env_and_json_export_import_round_trip_with_quoting_edge_cases(cli, initialized, tmp_path, zt_env):
    src = tmp_path / "src.json"
    src.write_text(json.dumps(EDGE_VALUES))
    assert cli("vault", "import", str(src)).code == 0
    env_out = tmp_path / "out.env"
    exported = cli("vault", "export", "--format", "env", "--output", str(env_out), "--yes")
    assert exported.code == 0, exported.err
    assert mode(env_out) == 0o600
    # One line per secret: newlines are escaped, so the file stays line-oriented.
    assert len(env_out.read_text().splitlines()) == len(EDGE_VALUES)

    other = {"ZEROTRUST_HOME": str(tmp_path / "second"), "XDG_CONFIG_HOME": str(tmp_path / "cfg2")}
    assert cli("init", env=other).code == 0
    assert cli("vault", "import", str(env_out), env=other).code == 0
    json_out = cli("vault", "export", "--format", "json", "--yes", env=other)
    assert json_out.code == 0, json_out.err
    doc = json.loads(json_out.out)
    assert doc["format"] == "zerotrust-export" and doc["version"] == 1
    assert {k: v["value"] for k, v in doc["secrets"].items()} == EDGE_VALUES
    for name in ("q/newline", "q/mixed", "q/spaces"):
        assert cli("vault", "get", name, env=other).out == EDGE_VALUES[name].encode()


def test_hand_written_env_file(cli, initialized, tmp_path):
    src = tmp_path / "hand.env"
    src.write_text(
        "# comment line\n"
        "\n"
        "export EXPORTED=yes\n"
        "PLAIN=value # trailing comment\n"
        "SINGLE='literal $x \\n # kept'\n"
        'DOUBLE="tab\\there # kept" # comment\n'
        "EMPTYISH=a=b\n"
    )
    assert cli("vault", "import", str(src)).code == 0, "import failed"
    expected = {"EXPORTED": "yes", "PLAIN": "value", "SINGLE": "literal $x \\n # kept", "DOUBLE": "tab\there # kept", "EMPTYISH": "a=b"}
    doc = json.loads(cli("vault", "export", "--yes").out)
    assert {k: v["value"] for k, v in doc["secrets"].items()} == expected


def test_binary_values_travel_in_json_but_not_env(cli, initialized, tmp_path):
    blob = bytes(range(256))
    (tmp_path / "b").write_bytes(blob)
    assert cli("vault", "put", "bin/x", "--value-file", str(tmp_path / "b")).code == 0
    as_json = cli("vault", "export", "--format", "json", "--yes")
    assert as_json.code == 0
    env2 = {"ZEROTRUST_HOME": str(tmp_path / "h2"), "XDG_CONFIG_HOME": str(tmp_path / "c2")}
    assert cli("init", env=env2).code == 0
    assert cli("vault", "import", "-", "--format", "json", input=as_json.out, env=env2).code == 0
    assert cli("vault", "get", "bin/x", env=env2).out == blob
    as_env = cli("vault", "export", "--format", "env", "--yes")
    assert as_env.code == 2 and "binary" in as_env.err and as_env.out == b""


def test_export_refuses_without_yes_when_stdin_is_not_a_tty(cli, initialized, tmp_path):
    assert cli("vault", "put", "e/x", input=b"do-not-leak").code == 0
    target = tmp_path / "export.json"
    refused = cli("vault", "export", "--output", str(target))
    assert refused.code == 2
    assert refused.err.startswith("zerotrust-admin: error:") and "--yes" in refused.err
    assert refused.out == b"" and not target.exists()
    assert b"do-not-leak" not in refused.out


def test_init_refuses_to_run_twice(cli, initialized):
    vault = initialized / "vault.db"
    key = initialized / "master.key"
    before = (vault.read_bytes(), key.read_bytes())
    again = cli("init")
    assert again.code == 1
    assert "already exists" in again.err and "Traceback" not in again.err
    assert (vault.read_bytes(), key.read_bytes()) == before


def test_init_json(cli, zt_env):
    result = cli("init", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["master_source"] == "keyfile" and Path(doc["vault"]).exists()
    assert doc["config_written"] == str(Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml")


def test_modes_are_private_even_with_a_permissive_umask(zt_env, tmp_path):
    def run(*args, input=b""):
        cmd = "umask 000; exec \"$0\" -m zerotrust_admin \"$@\""
        return subprocess.run(["sh", "-c", cmd, sys.executable, *args], env=zt_env, input=input, capture_output=True, timeout=60, cwd=str(ROOT))

    assert run("init").returncode == 0
    assert run("vault", "put", "a/b", input=b"v").returncode == 0
    assert run("vault", "get", "a/b", "--output-file", str(tmp_path / "got")).returncode == 0
    home = Path(zt_env["ZEROTRUST_HOME"])
    assert mode(home) == 0o700
    for name in ("vault.db", "master.key", "audit.log", "audit.key", "audit.log.head"):
        assert mode(home / name) == 0o600, name
    assert mode(tmp_path / "got") == 0o600
    config = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust"
    assert mode(config) == 0o700 and mode(config / "config.yaml") == 0o600


def test_init_writes_a_commented_example_config_that_checks_clean(cli, initialized, zt_env):
    config = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    text = config.read_text()
    assert text.count("\n#") >= 5 and "secrets:" in text
    check = cli("config", "check")
    assert check.code == 0, check.text + check.err
    assert f"OK: {config}" in check.text
    doc = json.loads(cli("config", "check", "--json").out)
    assert doc["clean"] is True and doc["config_file"] == str(config)


def test_init_does_not_overwrite_an_existing_config(cli, zt_env):
    config = Path(zt_env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("sessions:\n  backend: sqlite\n")
    os.chmod(config, 0o600)
    result = cli("init", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["config_written"] is None
    assert config.read_text() == "sessions:\n  backend: sqlite\n"

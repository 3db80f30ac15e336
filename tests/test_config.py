"""Configuration: lookup order, ${VAR} interpolation, *_file indirection,
ZEROTRUST_* overrides, permission rules, `config check` and `config show`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from zerotrust_admin.config import loader
from zerotrust_admin.config.check import check_config
from zerotrust_admin.config.loader import find_config_file, load_config
from zerotrust_admin.errors import ConfigError, InsecureFileError


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def env(tmp_path) -> dict:
    """A minimal environment: its own XDG dirs and home; nothing of the host's."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "ZEROTRUST_HOME": str(tmp_path / "zthome"), "HOME": str(tmp_path / "home")}


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch, tmp_path):
    monkeypatch.setattr(loader, "SYSTEM_CONFIG", tmp_path / "etc" / "zerotrust" / "config.yaml")


# --- interpolation ---------------------------------------------------------------
def test_interpolation_var_default_and_dollar_escape(tmp_path, env):
    cfg = write(tmp_path / "c.yaml", (
        "redis:\n"
        "  url: redis://${REDIS_HOST}:${REDIS_PORT:-6380}/0\n"
        "  key_prefix: ${PREFIX:-zt}:${EMPTY:-unused}\n"
        "aws:\n"
        "  region: ${REGION}\n"
        "  profile: cost$$center-$${NOT_A_VAR}\n"
        "  roles: ['arn:aws:iam::${ACCOUNT}:role/a']\n"
    ))
    config = load_config(cfg, {**env, "REDIS_HOST": "cache.internal", "REGION": "eu-west-1", "ACCOUNT": "123456789012", "EMPTY": ""})
    assert config.get("redis.url") == "redis://cache.internal:6380/0"
    assert config.get("redis.key_prefix") == "zt:"  # a set-but-empty variable wins over the default
    assert config.get("aws.region") == "eu-west-1"
    assert config.get("aws.profile") == "cost$center-${NOT_A_VAR}"
    assert config.get("aws.roles") == ["arn:aws:iam::123456789012:role/a"]


def test_missing_variable_is_an_error_naming_it(tmp_path, env):
    cfg = write(tmp_path / "c.yaml", "redis:\n  url: redis://${ZT_TEST_MISSING_HOST}:6379\n")
    with pytest.raises(ConfigError) as caught:
        load_config(cfg, env)
    assert "ZT_TEST_MISSING_HOST" in caught.value.message and "redis.url" in caught.value.message


def test_missing_variable_through_the_cli_exits_2(cli, tmp_path):
    cfg = write(tmp_path / "c.yaml", "aws:\n  region: ${ZT_TEST_MISSING_REGION}\n")
    result = cli("--config", str(cfg), "config", "show")
    assert result.code == 2
    lines = result.err.splitlines()
    assert lines[0].startswith("zerotrust-admin: error:") and "ZT_TEST_MISSING_REGION" in lines[0]
    assert len(lines) <= 2 and "Traceback" not in result.err


# --- *_file indirection ----------------------------------------------------------
def test_file_indirection_through_get_secret(tmp_path, env):
    secret_file = write(tmp_path / "secrets" / "redis.pass", "p@ss w0rd\n")
    cfg = write(tmp_path / "c.yaml", f"redis:\n  password_file: {secret_file}\n")
    config = load_config(cfg, env)
    secret = config.get_secret("redis.password")
    assert secret.reveal() == b"p@ss w0rd"  # one trailing newline is stripped
    assert "p@ss" not in repr(secret) and "p@ss" not in json.dumps(config.redacted())
    assert config.get_secret("aws.secret_key") is None


def test_value_beats_file_and_env_override_beats_both(tmp_path, env):
    secret_file = write(tmp_path / "redis.pass", "from-file")
    cfg = write(tmp_path / "c.yaml", f"redis:\n  password_file: {secret_file}\n")
    assert load_config(cfg, env).get_secret("redis.password").reveal() == b"from-file"
    overridden = load_config(cfg, {**env, "ZEROTRUST_REDIS_PASSWORD": "from-env"})
    assert overridden.get_secret("redis.password").reveal() == b"from-env"
    assert overridden.env_applied == ["ZEROTRUST_REDIS_PASSWORD"]


@pytest.mark.parametrize("problem", ["group-readable", "world-readable", "symlink"])
def test_unsafe_secret_files_are_refused(tmp_path, env, problem):
    real = write(tmp_path / "redis.pass", "hunter2-secret", 0o640 if problem == "group-readable" else 0o604 if problem == "world-readable" else 0o600)
    target = real
    if problem == "symlink":
        target = tmp_path / "link.pass"
        target.symlink_to(real)
    cfg = write(tmp_path / "c.yaml", f"redis:\n  password_file: {target}\n")
    config = load_config(cfg, env)
    with pytest.raises(InsecureFileError) as caught:
        config.get_secret("redis.password")
    assert "redis.password_file" in caught.value.message
    assert "hunter2" not in caught.value.message + (caught.value.hint or "")


def test_missing_secret_file_is_a_config_error(tmp_path, env):
    cfg = write(tmp_path / "c.yaml", f"redis:\n  password_file: {tmp_path / 'nope'}\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(cfg, env).get_secret("redis.password")


# --- environment overrides ---------------------------------------------------------
def test_env_overrides_are_typed_and_nested(tmp_path, env):
    cfg = write(tmp_path / "c.yaml", "encryption:\n  rotation:\n    master_days: 30\nredis:\n  url: redis://127.0.0.1:6379/0\n")
    key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
    config = load_config(cfg, {
        **env,
        "ZEROTRUST_REDIS_PASSWORD": "pw",
        "ZEROTRUST_ENCRYPTION_KEY": key,
        "ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS": "7",
        "ZEROTRUST_HOME": env["ZEROTRUST_HOME"],  # not an override
        "ZEROTRUST_PRINCIPAL": "x@Y",  # not an override
    })
    assert config.get("redis.password") == "pw"
    assert config.get("encryption.key") == key
    assert config.get("encryption.rotation.master_days") == 7  # int, not "7"
    assert config.get("encryption.rotation.dek_days") == 30  # default kept beside the override
    assert config.get("redis.url") == "redis://127.0.0.1:6379/0"
    assert sorted(config.env_applied) == ["ZEROTRUST_ENCRYPTION_KEY", "ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS", "ZEROTRUST_REDIS_PASSWORD"]


def test_env_override_inside_a_provider_block(env):
    config = load_config(None, {**env, "ZEROTRUST_SECRETS_CONFIG_MOUNT_PATH": "kv2", "ZEROTRUST_SECRETS_CONFIG_TOKEN": "t"})
    assert config.get("secrets.config.mount_path") == "kv2"
    assert config.get_secret("secrets.config.token").reveal() == b"t"


def test_env_override_of_wrong_type_is_an_error(env):
    with pytest.raises(ConfigError, match="ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS"):
        load_config(None, {**env, "ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS": "ninety"})


def test_defaults_without_any_config_file(env):
    config = load_config(None, env)
    assert config.path is None
    assert config.get("encryption.rotation.master_days") == 90 and config.get("sessions.backend") == "sqlite"
    assert config.provider == "local"
    assert config.vault_path == Path(env["ZEROTRUST_HOME"]) / "vault.db"


# --- lookup order ----------------------------------------------------------------
def test_lookup_order(tmp_path, env, monkeypatch):
    system = write(tmp_path / "etc" / "zerotrust" / "config.yaml", "sessions:\n  backend: sqlite\n")
    assert find_config_file(None, env) == system
    xdg = write(Path(env["XDG_CONFIG_HOME"]) / "zerotrust" / "config.yaml", "{}\n")
    assert find_config_file(None, env) == xdg
    from_env = write(tmp_path / "from-env.yaml", "{}\n")
    assert find_config_file(None, {**env, "ZEROTRUST_CONFIG": str(from_env)}) == from_env
    explicit = write(tmp_path / "explicit.yaml", "{}\n")
    assert find_config_file(explicit, {**env, "ZEROTRUST_CONFIG": str(from_env)}) == explicit
    # A named file that does not exist is an error, never a silent fallback.
    with pytest.raises(ConfigError, match="ZEROTRUST_CONFIG"):
        find_config_file(None, {**env, "ZEROTRUST_CONFIG": str(tmp_path / "missing.yaml")})
    with pytest.raises(ConfigError, match="does not exist") as caught:
        find_config_file(tmp_path / "missing.yaml", env)
    assert "--config" in caught.value.hint


def test_xdg_default_is_home_dot_config(tmp_path, monkeypatch):
    home = tmp_path / "h"
    cfg = write(home / ".config" / "zerotrust" / "config.yaml", "{}\n")
    monkeypatch.setenv("HOME", str(home))  # Path.home() reads the process environment
    assert find_config_file(None, {"HOME": str(home)}) == cfg


def test_the_working_directory_is_never_searched(tmp_path, env, monkeypatch):
    work = tmp_path / "cwd"
    for rel in ("config.yaml", "zerotrust/config.yaml", ".zerotrust.yaml", "zerotrust.yaml"):
        write(work / rel, "bogus_section: 1\n")
    monkeypatch.chdir(work)
    assert find_config_file(None, env) is None
    assert load_config(None, env).path is None


def test_cli_uses_config_option_over_environment(cli, tmp_path):
    a = write(tmp_path / "a.yaml", "aws:\n  region: from-option\n")
    b = write(tmp_path / "b.yaml", "aws:\n  region: from-env-var\n")
    shown = cli("--config", str(a), "config", "show", "--json", env={"ZEROTRUST_CONFIG": str(b)})
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["config"]["aws"]["region"] == "from-option"
    shown = cli("config", "show", "--json", env={"ZEROTRUST_CONFIG": str(b)})
    assert json.loads(shown.out)["config"]["aws"]["region"] == "from-env-var"


# --- permission rules of the config file itself --------------------------------
def test_group_writable_config_is_refused_readable_is_reported(tmp_path, env):
    writable = write(tmp_path / "w.yaml", "{}\n", 0o620)
    with pytest.raises(InsecureFileError, match="writable"):
        load_config(writable, env)
    readable = write(tmp_path / "r.yaml", "{}\n", 0o644)
    assert load_config(readable, env).path == readable  # loads, but config check flags it
    report = check_config(readable, env)
    assert [p.key for p in report.problems] == ["(file)"] and "0644" in report.problems[0].message


# --- config check ------------------------------------------------------------------
BAD_CONFIG = """\
secrets:
  provider: local
  providr: oops
redis:
  url: redis://127.0.0.1:6379/0
  password: hunter2-in-plaintext
  password_file: {missing}
encryption:
  rotaton: {{master_days: 90}}
tls:
  min_version: "1.0"
  ciphers: ["ECDHE-RSA-AES256-GCM-SHA384", "AES128-SHA", "DES-CBC3-SHA"]
secrets_x: 1
"""


def test_config_check_reports_every_problem(tmp_path, env):
    cfg = write(tmp_path / "bad.yaml", BAD_CONFIG.format(missing=tmp_path / "nope.pass"), 0o640)
    secret_file = write(tmp_path / "hashi.secret", "s", 0o644)
    cfg.write_text(cfg.read_text() + f"aws:\n  endpoint_url: https://aws.internal\n  role_config: {{verify: false}}\n"
                   f"  secret_access_key_file: {secret_file}\n")
    report = check_config(cfg, env)
    by_key = {p.key: p for p in report.problems}
    assert not report.clean
    assert "0640" in by_key["(file)"].message
    assert by_key["secrets.providr"].hint == "did you mean 'secrets.provider'?"
    assert by_key["encryption.rotaton"].hint == "did you mean 'encryption.rotation'?"
    assert by_key["secrets_x"].hint == "did you mean 'secrets'?"
    assert "plaintext secret" in by_key["redis.password"].message
    assert "hunter2" not in json.dumps(report.to_dict())
    assert "1.2" in by_key["tls.min_version"].message
    weak = by_key["tls.ciphers"].message
    assert "AES128-SHA" in weak and "DES-CBC3-SHA" in weak and "GCM" not in weak
    assert "verification off" in by_key["aws.role_config.verify"].message
    assert "does not exist" in by_key["redis.password_file"].message
    assert "0644" in by_key["aws.secret_access_key_file"].message


@pytest.mark.parametrize("version", ["1.0", "TLSv1.1", 1.1])
def test_old_tls_versions_are_flagged(tmp_path, env, version):
    cfg = write(tmp_path / "c.yaml", f"tls:\n  min_version: {json.dumps(version)}\n")
    assert [p.key for p in check_config(cfg, env).problems] == ["tls.min_version"]


def test_config_check_is_clean_on_a_good_config(tmp_path, env):
    secret_file = write(tmp_path / "redis.pass", "pw")
    cfg = write(tmp_path / "good.yaml", (
        "secrets: {provider: local}\n"
        f"redis: {{url: 'rediss://cache.example.com:6380/0', password_file: {secret_file}}}\n"
        "tls: {min_version: '1.3', ciphers: [TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256]}\n"
        "encryption: {rotation: {master_days: 60}}\n"
        "aws: {region: '${AWS_REGION:-us-east-1}'}\n"
    ))
    report = check_config(cfg, env)
    assert report.clean, report.problems


def test_config_check_cli_exit_codes_and_json(cli, tmp_path):
    good = write(tmp_path / "good.yaml", "sessions: {backend: sqlite}\n")
    ok = cli("--config", str(good), "config", "check")
    assert ok.code == 0 and f"OK: {good}" in ok.text
    bad = write(tmp_path / "bad.yaml", "sesions: {backend: sqlite}\ntls: {min_version: '1.0'}\n")
    result = cli("--config", str(bad), "config", "check")
    assert result.code == 1
    assert "did you mean 'sessions'?" in result.text and "tls.min_version" in result.text
    as_json = cli("--config", str(bad), "config", "check", "--json")
    assert as_json.code == 1
    doc = json.loads(as_json.out)
    assert doc["clean"] is False and doc["config_file"] == str(bad)
    assert {p["key"] for p in doc["problems"]} == {"sesions", "tls.min_version"}
    assert all(set(p) == {"severity", "key", "message", "hint"} for p in doc["problems"])


def test_config_check_reports_malformed_yaml_and_missing_variables(tmp_path, env):
    broken = write(tmp_path / "broken.yaml", "redis:\n  url: [unclosed\n")
    report = check_config(broken, env)
    assert len(report.problems) == 1 and "not valid YAML" in report.problems[0].message
    missing = write(tmp_path / "missing.yaml", "aws:\n  region: ${ZT_TEST_NOT_SET}\n")
    report = check_config(missing, env)
    assert any("ZT_TEST_NOT_SET" in p.message for p in report.problems)


def test_config_check_lists_env_overrides(cli, tmp_path):
    result = cli("config", "check", "--json", env={"ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS": "45"})
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["config_file"] is None and doc["env_overrides"] == ["ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS"]


def test_config_check_flags_a_mistyped_override(env):
    report = check_config(None, {**env, "ZEROTRUST_TLS_MIN_VERSON": "1.0", "ZEROTRUST_REDIS_PASSWORD": "x",
                                 "ZEROTRUST_SECRETS_CONFIG_URL": "https://vault.example.com", "ZEROTRUST_OTP": "123456"})
    assert [(p.key, p.hint) for p in report.problems] == [("ZEROTRUST_TLS_MIN_VERSON", "did you mean ZEROTRUST_TLS_MIN_VERSION?")]
    assert "x" not in report.problems[0].message.split()


# --- config show --------------------------------------------------------------------
def test_config_show_redacts_secrets_and_names_overrides(cli, tmp_path):
    pass_file = write(tmp_path / "redis.pass", "file-secret-value")
    cfg = write(tmp_path / "c.yaml", (
        f"redis: {{url: 'redis://127.0.0.1:6379/0', password_file: {pass_file}}}\n"
        "secrets: {provider: hashicorp, config: {url: 'http://127.0.0.1:8200', token: '${VAULT_TOKEN}'}}\n"
    ))
    env = {"ZEROTRUST_REDIS_PASSWORD": "env-secret-value", "VAULT_TOKEN": "tok-secret-value", "ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS": "10"}
    shown = cli("--config", str(cfg), "config", "show", "--json", env=env)
    assert shown.code == 0, shown.err
    doc = json.loads(shown.out)
    assert doc["config"]["redis"]["password"] == "<redacted>"
    assert doc["config"]["secrets"]["config"]["token"] == "<redacted>"
    assert doc["config"]["redis"]["password_file"] == str(pass_file)  # a path is not a secret
    assert doc["config"]["encryption"]["rotation"]["master_days"] == 10
    assert sorted(doc["env_overrides"]) == ["ZEROTRUST_ENCRYPTION_ROTATION_MASTER_DAYS", "ZEROTRUST_REDIS_PASSWORD"]
    assert doc["config_file"] == str(cfg)
    text = cli("--config", str(cfg), "config", "show", env=env)
    assert text.code == 0
    assert "# overridden by ZEROTRUST_REDIS_PASSWORD" in text.text and "<redacted>" in text.text
    for result in (shown, text):
        for secret in ("env-secret-value", "tok-secret-value", "file-secret-value"):
            assert secret not in result.text and secret not in result.err


# --- URL passwords and YAML limits (threat model F4, F5; the CLI tests are in tests/security/test_tm_files.py)
@pytest.mark.parametrize("text,shown", [
    ("redis://:PASS@h:6379/0", "redis://:<redacted>@h:6379/0"),
    ("https://user:pw@host/x", "https://user:<redacted>@host/x"),
    ("rediss://u:p%40x@h?x=1", "rediss://u:<redacted>@h?x=1"),
    ("redis://:ab/cd@host", "redis://:<redacted>@host"),  # an unencoded "/" in the password
    ("see https://a:b@h1 and redis://:c@h2", "see https://a:<redacted>@h1 and redis://:<redacted>@h2"),
    ("ssh://git@host", "ssh://git@host"),  # a user name alone is kept
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_redact_url(text, shown):
    from zerotrust_admin.secret import redact_url

    assert redact_url(text) == shown


def test_anchor_merge_key_and_alias_in_a_list_are_refused(tmp_path, env):
    for text, line in (("base: &b {region: x}\naws:\n  <<: *b\n", 1), ("aws:\n  roles:\n    - a\n    - *nothing\n", 4)):
        cfg = write(tmp_path / "a.yaml", text)
        with pytest.raises(ConfigError, match=f"line {line}"):
            load_config(cfg, env)

"""TOTP (RFC 6238) known answers, enrolment in the vault, single use, skew
window, and `vault get` of a sensitive secret end to end."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from zerotrust_admin.audit.log import Actor, AuditLog
from zerotrust_admin.errors import DeniedError
from zerotrust_admin.keys import KeySourceContext
from zerotrust_admin.keys.keyfile import KeyFileSource
from zerotrust_admin.mfa import MfaPolicy, MfaStore, WrongCode, require_mfa, seed_name, totp
from zerotrust_admin.vault import Vault
from tests.servers import openbao  # noqa: F401  (fixture)

# RFC 6238 appendix B (8 digits) and RFC 4226 appendix D.
RFC6238_SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
RFC4226_HOTP = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
ALICE = Actor(user="alice@EXAMPLE.COM", source_ip="192.0.2.10", host="testhost")


@pytest.mark.parametrize("t,sha1,sha256,sha512", RFC6238_VECTORS)
def test_rfc6238_vectors(t, sha1, sha256, sha512):
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        assert totp.totp(RFC6238_SEEDS[algorithm], t, digits=8, algorithm=algorithm) == expected


def test_rfc4226_hotp_vectors():
    assert [totp.hotp(RFC6238_SEEDS["SHA1"], i) for i in range(10)] == RFC4226_HOTP


def test_matching_step_window_and_format():
    seed = RFC6238_SEEDS["SHA1"]
    now = 1_700_000_000
    step = totp.time_step(now)
    for delta in (-1, 0, 1):
        code = totp.hotp(seed, step + delta)
        assert totp.matching_step(seed, code, now) == step + delta
    assert totp.matching_step(seed, totp.hotp(seed, step - 2), now) is None  # beyond +/-1 step
    assert totp.matching_step(seed, totp.hotp(seed, step - 2), now, skew_steps=2) == step - 2
    assert totp.matching_step(seed, "12345", now) is None
    assert totp.matching_step(seed, "abcdef", now) is None


def test_otpauth_uri_round_trips_the_seed():
    seed = totp.new_seed()
    uri = totp.otpauth_uri(seed, "alice@EXAMPLE.COM", "zerotrust-admin")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parsed.path == "/zerotrust-admin:alice@EXAMPLE.COM"
    query = parse_qs(parsed.query)
    secret = query["secret"][0]
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == seed
    assert query["issuer"] == ["zerotrust-admin"] and query["digits"] == ["6"] and query["period"] == ["30"]


# --- enrolment and verification against a real vault ---------------------------
class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    home = tmp_path / "home"
    ctx = KeySourceContext(config={}, home=home, environ={})
    vault = Vault.create(home / "vault.db", "keyfile", lambda key_id: KeyFileSource.create(ctx, key_id), audit=AuditLog(home / "audit.log"), actor=ALICE)
    s = MfaStore(vault, home, MfaPolicy(), clock=Clock(1_700_000_000.0))
    yield s
    vault.close()


def _seed(store, principal="alice@EXAMPLE.COM") -> bytes:
    secret, _ = store.vault.get(seed_name(principal))
    with secret:
        return secret.reveal()


def test_enrolment_stores_the_seed_sealed_in_the_vault(store):
    result = store.enroll("alice@EXAMPLE.COM")
    seed = _seed(store)
    assert result.secret_base32 == totp.b32(seed)
    assert store.vault.info(seed_name("alice@EXAMPLE.COM")).sensitive
    assert seed not in (store.vault.path).read_bytes()  # encrypted at rest
    assert "secret" not in repr(result).lower().replace("secret=<redacted>", "")
    with pytest.raises(DeniedError):
        store.enroll("alice@EXAMPLE.COM")  # refuses to replace silently
    again = store.enroll("alice@EXAMPLE.COM", replace=True)
    assert again.replaced and _seed(store) != seed


def test_codes_are_single_use_and_skew_is_bounded(store):
    store.enroll("alice@EXAMPLE.COM")
    seed = _seed(store)
    code = totp.totp(seed, store.clock.t)
    assert store.verify("alice@EXAMPLE.COM", code) == totp.time_step(store.clock.t)
    with pytest.raises(WrongCode, match="already used"):
        store.verify("alice@EXAMPLE.COM", code)
    # An older code inside the window is also refused once a later step was used.
    with pytest.raises(WrongCode, match="already used"):
        store.verify("alice@EXAMPLE.COM", totp.totp(seed, store.clock.t - 30))
    store.clock.t += 30
    assert store.verify("alice@EXAMPLE.COM", totp.totp(seed, store.clock.t + 30))  # clock skew +1 step
    store.clock.t += 300
    with pytest.raises(WrongCode, match="wrong MFA code"):
        store.verify("alice@EXAMPLE.COM", totp.totp(seed, store.clock.t - 90))  # 3 steps old


def test_require_mfa_counts_failures_towards_lockout(store, tmp_path):
    from zerotrust_admin.config import load_config

    store.enroll("alice@EXAMPLE.COM")
    config = load_config(environ={"ZEROTRUST_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "none"), "HOME": str(tmp_path)})
    audit = AuditLog(tmp_path / "home" / "audit.log")
    for _ in range(5):
        with pytest.raises(WrongCode):
            require_mfa(config, store, ALICE, audit, "prod/db", lambda: "000000")
    good = totp.totp(_seed(store), store.clock.t)
    with pytest.raises(DeniedError, match="locked out"):
        require_mfa(config, store, ALICE, audit, "prod/db", lambda: good)
    events = [(r["event"], r["success"], (r.get("details") or {}).get("reason")) for r in audit.records()]
    assert ("mfa", False, "wrong_code") in events
    assert any(e[0] == "lockout" for e in events)


def test_mfa_policy_config_validation():
    from zerotrust_admin.errors import ConfigError

    class C(dict):
        def get(self, key, default=None):
            return super().get(key, default)

    assert MfaPolicy.from_config(C({"security.mfa": {"required_for": ["prod/*"]}})).required("prod/db", False)
    assert not MfaPolicy.from_config(C({"security.mfa": {"required_for": ["prod/*"]}})).required("dev/db", False)
    assert MfaPolicy.from_config(C()).required("dev/db", True)
    with pytest.raises(ConfigError, match="skew_steps"):
        MfaPolicy.from_config(C({"security.mfa": {"skew_steps": 10}}))
    with pytest.raises(ConfigError, match="security.mfa.requried_for"):
        MfaPolicy.from_config(C({"security.mfa": {"requried_for": []}}))


# --- CLI -------------------------------------------------------------------------
def _enroll(cli) -> bytes:
    result = cli("mfa", "enroll", "--json")
    assert result.code == 0, result.err
    secret = json.loads(result.out)["secret_base32"]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def test_cli_enroll_status_verify(cli, initialized):
    from urllib.parse import parse_qs, urlparse

    result = cli("mfa", "enroll")
    assert result.code == 0, result.err
    assert result.text.startswith("otpauth://totp/")
    first = parse_qs(urlparse(result.text.strip()).query)["secret"][0]
    assert cli("mfa", "enroll").code == 4  # already enrolled
    assert cli("mfa", "enroll", "--force").code == 2  # no terminal, no --yes
    seed = _enroll_force(cli, base64.b32decode(first + "=" * (-len(first) % 8)))
    status = json.loads(cli("mfa", "status", "--json").out)
    assert status["enrolled"] and status["principal"] == "alice@EXAMPLE.COM"
    code = totp.totp(seed, time.time())
    ok = cli("mfa", "verify", "--otp-stdin", input=code.encode() + b"\n")
    assert ok.code == 0, ok.err
    replay = cli("mfa", "verify", "--otp-stdin", input=code.encode() + b"\n")
    assert replay.code == 4 and "already used" in replay.err
    # The reserved seed name is not readable through the normal commands.
    assert cli("vault", "get", seed_name("alice@EXAMPLE.COM")).code == 4


def _enroll_force(cli, old_seed: bytes) -> bytes:
    """Re-enrol: needs a current code of the old seed (threat-model row M1)."""
    _wait_fresh_step()
    result = cli("mfa", "enroll", "--force", "--yes", "--json", env={"ZEROTRUST_OTP": totp.totp(old_seed, time.time())})
    assert result.code == 0, result.err
    secret = json.loads(result.out)["secret_base32"]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def _wait_fresh_step():
    # Avoid a code that straddles a step boundary between computing and checking.
    if time.time() % 30 > 27:
        time.sleep(30 - time.time() % 30 + 0.2)


def test_cli_sensitive_secret_needs_a_valid_unused_code(cli, initialized):
    seed = _enroll(cli)
    assert cli("vault", "put", "prod/db", "--sensitive", input=b"s3cret-value").code == 0
    no_code = cli("vault", "get", "prod/db")
    assert no_code.code == 4 and b"s3cret" not in no_code.out
    assert "MFA" in no_code.err
    wrong = cli("vault", "get", "prod/db", env={"ZEROTRUST_OTP": "000000"})
    assert wrong.code == 4 and b"s3cret" not in wrong.out
    _wait_fresh_step()
    code = totp.totp(seed, time.time())
    ok = cli("vault", "get", "prod/db", env={"ZEROTRUST_OTP": code})
    assert ok.code == 0, ok.err
    assert ok.out == b"s3cret-value"
    replay = cli("vault", "get", "prod/db", "--otp-stdin", input=code.encode() + b"\n")
    assert replay.code == 4 and "already used" in replay.err
    records = [json.loads(line) for line in (initialized / "audit.log").read_text().splitlines()]
    mfa = [(r["success"], (r.get("details") or {}).get("reason")) for r in records if r["event"] == "mfa" and r["resource"] == "prod/db"]
    assert (False, "no_code") in mfa and (False, "wrong_code") in mfa and (True, None) in mfa and (False, "replayed") in mfa


def test_cli_required_for_globs(cli, initialized, zt_env, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("security:\n  mfa:\n    required_for: ['prod/*']\n")
    config.chmod(0o600)
    env = {"ZEROTRUST_CONFIG": str(config)}
    assert cli("vault", "put", "prod/api", input=b"v1", env=env).code == 0
    assert cli("vault", "put", "dev/api", input=b"v2", env=env).code == 0
    assert cli("vault", "get", "dev/api", env=env).out == b"v2"
    denied = cli("vault", "get", "prod/api", env=env)
    assert denied.code == 4 and "not enrolled" in denied.err


def test_external_provider_sensitive_read_needs_mfa(cli, initialized, openbao, tmp_path):  # noqa: F811
    """With secrets in OpenBao, MFA is checked after the provider's read and
    before the value is released; the seed stays in the integrated vault."""
    import yaml

    secret_id = tmp_path / "bao-secret-id"
    secret_id.write_text(openbao.new_secret_id() + "\n")
    secret_id.chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"secrets": {"provider": "hashicorp", "config": {
        "url": openbao.url, "mount_path": openbao.MOUNT, "role_id": openbao.role_id, "secret_id_file": str(secret_id), "timeout": 5}}}))
    config.chmod(0o600)
    env = {"ZEROTRUST_CONFIG": str(config)}
    seed = _enroll(cli)
    name = "mfa-" + os.urandom(4).hex() + "/db"
    assert cli("vault", "put", name, "--sensitive", input=b"bao-sensitive", env=env).code == 0
    assert cli("vault", "put", name + "-plain", input=b"bao-plain", env=env).out == b""
    plain = cli("vault", "get", name + "-plain", env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert plain.out == b"bao-plain"  # not sensitive: no code asked ...
    assert "hvac" not in plain.err  # ... and the check kept the SDK-free fast read path (no metadata call)
    refused = cli("vault", "get", name, env=env)
    assert refused.code == 4 and refused.out == b"" and "MFA" in refused.err
    _wait_fresh_step()
    ok = cli("vault", "get", name, env={**env, "ZEROTRUST_OTP": totp.totp(seed, time.time())})
    assert ok.code == 0 and ok.out == b"bao-sensitive", ok.err
    records = [json.loads(line) for line in (initialized / "audit.log").read_text().splitlines()]
    reads = [(r["success"], (r.get("details") or {}).get("error")) for r in records if r["action"] == "read" and r["resource"] == name]
    assert reads[0] == (False, "DeniedError") and reads[-1] == (True, None)


def test_export_of_a_sensitive_secret_needs_one_code(cli, initialized):
    seed = _enroll(cli)
    assert cli("vault", "put", "exp/plain", input=b"p").code == 0
    assert cli("vault", "put", "exp/secret", "--sensitive", input=b"s").code == 0
    refused = cli("vault", "export", "--yes", "--prefix", "exp/")
    assert refused.code == 4 and refused.out == b""
    _wait_fresh_step()
    ok = cli("vault", "export", "--yes", "--prefix", "exp/", env={"ZEROTRUST_OTP": totp.totp(seed, time.time())})
    assert ok.code == 0 and json.loads(ok.out)["secrets"] == {"exp/plain": {"value": "p"}, "exp/secret": {"value": "s"}}
    # The MFA seed itself is listed (names are not secret) but never exported.
    assert seed_name("alice@EXAMPLE.COM") in cli("vault", "list", "_zerotrust/").text
    seeds = cli("vault", "export", "--yes", "--prefix", "_zerotrust/")
    assert seeds.code == 0 and json.loads(seeds.out)["secrets"] == {}

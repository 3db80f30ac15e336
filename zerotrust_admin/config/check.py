"""``config check``: every problem at once, not just the first.

Reports unknown keys (with a "did you mean"), a config file readable by
group/others, plaintext secrets in the file, TLS settings below policy
(TLS 1.2+, AEAD cipher suites, verification on), and missing or unsafe files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlparse

from zerotrust_admin.config import schema as S
from zerotrust_admin.config.loader import (
    Config,
    check_audit_path,
    default_home,
    find_config_file,
    interpolate,
    load_config,
    parse_yaml,
    read_config_text,
    refused_overrides,
    type_errors,
    unknown_keys,
    url_problems,
)
from zerotrust_admin.errors import ConfigError, ZeroTrustError
from zerotrust_admin.fsutil import check_home_dir
from zerotrust_admin.secret import redact_url
from zerotrust_admin.structs import asdict, struct

AEAD_MARKERS = ("GCM", "CHACHA20", "CCM")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PATH_KEYS = {"ca_file", "cert_file", "module", "path"}


@struct
class Problem:
    severity: str  # "error" | "warning" | "note" (a note does not make the file unclean)
    key: str
    message: str
    hint: str = ""

    def __post_init__(self) -> None:
        # A message may quote a configured URL: never with its password (F5).
        self.message = redact_url(self.message)
        self.hint = redact_url(self.hint)

    def to_dict(self) -> dict:
        return asdict(self)


@struct
class CheckReport:
    path: str | None
    problems: list[Problem]
    env_overrides: list[str]

    @property
    def clean(self) -> bool:
        return not any(p.severity != "note" for p in self.problems)

    def to_dict(self) -> dict:
        return {"config_file": self.path, "clean": self.clean, "problems": [p.to_dict() for p in self.problems], "env_overrides": self.env_overrides}


def check_config(explicit=None, environ=None) -> CheckReport:
    env = dict(os.environ if environ is None else environ)
    problems: list[Problem] = []
    path = find_config_file(explicit, env)
    raw: dict = {}
    for var, dotted in refused_overrides(env):
        problems.append(Problem("error", var, f"environment variable {var} would override {dotted}, a security setting that only the config file may set",
                                f"unset {var}"))
        env.pop(var)
    try:
        check_home_dir(default_home(env))
    except ZeroTrustError as exc:
        problems.append(Problem("error", "ZEROTRUST_HOME", exc.message, exc.hint or ""))
    if path is not None:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            problems.append(Problem("error", "(file)", f"config file {path} has mode {mode:04o}: readable or writable by group/others", f"chmod 600 {path}"))
        try:
            raw = parse_yaml(read_config_text(path), f"config file {path}")
        except ConfigError as exc:
            problems.append(Problem("error", "(file)", exc.message, exc.hint or ""))
            return CheckReport(str(path), problems, [])
    for key, suggestion in unknown_keys(raw):
        problems.append(Problem("error", key, f"unknown config key {key!r}", f"did you mean {suggestion!r}?" if suggestion else "remove it or check the documentation"))
    problems.extend(_plaintext_secrets(raw))
    try:
        interpolate(raw, env)
    except ConfigError as exc:
        problems.append(Problem("error", "(interpolation)", exc.message, exc.hint or ""))
        return CheckReport(str(path) if path else None, problems, [])
    try:
        config = load_config(explicit, env, validate=False)
    except ZeroTrustError as exc:
        problems.append(Problem("error", "(load)", exc.message, exc.hint or ""))
        return CheckReport(str(path) if path else None, problems, [])
    try:
        check_audit_path(config.data)
    except ZeroTrustError as exc:
        problems.append(Problem("error", "audit.path", exc.message, exc.hint or ""))
    for message in type_errors(config.data):
        problems.append(Problem("error", message.split(" ", 1)[0], message))
    provider = str(config.get("secrets.provider") or "local").lower()
    if S.PROVIDER_ALIASES.get(provider, provider) not in S.PROVIDERS:
        problems.append(Problem("error", "secrets.provider", f"unknown provider {provider!r}", f"one of: {', '.join(S.PROVIDERS)}"))
    backend = config.get("sessions.backend")
    if backend not in (None, "sqlite", "redis"):
        problems.append(Problem("error", "sessions.backend", f"unknown session backend {backend!r}", "sqlite or redis"))
    problems.extend(_tls_policy(config))
    problems.extend(_files(config.data))
    bad_urls = url_problems(config.data)
    problems.extend(Problem("error", dotted, message, hint) for dotted, message, hint in bad_urls)
    problems.extend(_plaintext_transport(config, skip={dotted for dotted, _m, _h in bad_urls}))
    problems.extend(_security_settings(config))
    problems.extend(_unknown_overrides(env))
    return CheckReport(str(path) if path else None, problems, config.env_applied)


def _unknown_overrides(env: dict) -> list[Problem]:
    """A typo in a ZEROTRUST_<SECTION>_<KEY> variable would otherwise be applied
    to a key nothing reads, silently (e.g. ZEROTRUST_TLS_MIN_VERSON)."""
    import difflib

    from zerotrust_admin.config.loader import env_overrides

    known = [f"ZEROTRUST_{'_'.join(p).upper()}" for p in _leaf_paths(S.SCHEMA)]
    found = []
    for keypath, _value, var in env_overrides(env):
        node = S.SCHEMA
        for part in keypath:
            if node is S.FREE or not isinstance(node, dict):
                break
            node = node.get(part)
            if node is None:
                close = difflib.get_close_matches(var, known, n=1, cutoff=0.8)
                found.append(Problem("error", var, f"environment variable {var} overrides {'.'.join(keypath)}, which is not a known config key",
                                     f"did you mean {close[0]}?" if close else "unset it or check docs/configuration.md"))
                break
    return found


def _leaf_paths(schema: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, sub in schema.items():
        if isinstance(sub, dict):
            out.extend(_leaf_paths(sub, prefix + (key,)))
        else:
            out.append(prefix + (key,))
    return out


def _security_settings(config: Config) -> list[Problem]:
    """access.policies, security.mfa, security.lockout: the same checks as at load."""
    from zerotrust_admin.access.settings import security_problems

    return [Problem("error", key, message, hint) for key, message, hint in security_problems(config)]


def walk_config(node, prefix=""):
    """Yield (dotted key, key, value) for every key of a config tree, lists as key[i]."""
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            yield dotted, str(key), value
            yield from walk_config(value, dotted + ".")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_config(value, f"{prefix[:-1]}[{i}].")


def is_placeholder(text: str) -> bool:
    """A documentation placeholder such as the seed's ``XXXXXXXXXXXXXXXXXXXXXXXX``
    (or a URL ending in one): at least 8 X's and nothing else in the last segment."""
    last = text.rstrip("/").rsplit("/", 1)[-1]
    return len(last) >= 8 and set(last.upper()) == {"X"}


def _plaintext_secrets(raw: dict) -> list[Problem]:
    found = []
    for dotted, key, value in walk_config(raw):
        if isinstance(value, str) and "${" not in value and redact_url(value, value=True) != value:
            found.append(Problem(
                "error", dotted, f"{dotted} holds a password inside a URL in the config file",
                f"move the password to {key}_file or a password key (mode 0600 file), an environment variable (${{VAR}}) or the vault (vault:NAME)"
                if key != "url" else "put the password in the section's password_file (mode 0600), or write ${VAR} in the URL",
            ))
            continue
        if key in S.SECRET_KEYS and isinstance(value, (str, int)) and value not in ("", None):
            text = str(value)
            if "${" in text or text.startswith("vault:"):
                continue
            if key == "key" and not dotted.startswith("encryption"):
                continue  # e.g. a cache "key" name, not a key value
            if key in ("secret", "webhook_url") and dotted.startswith("secret_rotation["):
                continue  # the NAME of the managed vault secret; a hand-over URL (one with a password in it is refused at load)
            if is_placeholder(text):  # the seed's XXXXXXXX: not a secret, but not usable either
                found.append(Problem("note", dotted, f"{dotted} is a placeholder ({text.rsplit('/', 1)[-1][:4]}...), not a real value yet",
                                     f"before use, put the real one in {key}_file (mode 0600), an environment variable (${{VAR}}) or the vault (vault:NAME)"))
                continue
            found.append(Problem(
                "error", dotted, f"{dotted} holds a plaintext secret in the config file",
                f"move it to {key}_file (mode 0600), an environment variable (${{VAR}}) or the vault (vault:NAME)",
            ))
    return found


def _tls_policy(config: Config) -> list[Problem]:
    found = []
    tls = config.section("tls")
    version = tls.get("min_version")
    if version is not None:
        text = str(version).upper().replace("TLSV", "").replace("TLS", "").strip(" v")
        try:
            if float(text) < 1.2:
                found.append(Problem("error", "tls.min_version", f"tls.min_version {version!r} is below policy (TLS 1.2)", "set tls.min_version: \"1.2\" or \"1.3\""))
        except ValueError:
            found.append(Problem("error", "tls.min_version", f"tls.min_version {version!r} is not a TLS version", "use \"1.2\" or \"1.3\""))
    ciphers = tls.get("ciphers")
    if ciphers:
        names = ciphers if isinstance(ciphers, list) else str(ciphers).split(":")
        weak = [c for c in names if not any(m in str(c).upper() for m in AEAD_MARKERS)]
        if weak:
            found.append(Problem("error", "tls.ciphers", f"non-AEAD cipher suites allowed: {', '.join(map(str, weak))}", "allow only AES-GCM or ChaCha20-Poly1305 suites"))
    for dotted, key, value in walk_config(config.data):
        if key in ("verify", "tls_verify", "verify_ssl", "ssl_verify") and value is False:
            found.append(Problem("error", dotted, f"{dotted} turns certificate verification off", "remove it and trust the server's CA with ca_file"))
    return found


def _files(data: dict) -> list[Problem]:
    found = []
    for dotted, key, value in walk_config(data):
        if not isinstance(value, str) or not value:
            continue
        if not (key.endswith("_file") or key in PATH_KEYS):
            continue
        path = Path(value).expanduser()
        if not path.exists():
            if key == "path" and dotted.startswith(("audit", "sessions")):
                continue  # created on first use
            found.append(Problem("error", dotted, f"{dotted} points to {path}, which does not exist", "create the file or fix the path"))
            continue
        secretish = key.endswith("_file") and key[: -len("_file")] in S.SECRET_KEYS | {"key", "pin", "secret"}
        if secretish:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            if os.path.islink(path):
                found.append(Problem("error", dotted, f"{dotted} ({path}) is a symbolic link", "point at the real file"))
            elif mode & 0o077:
                found.append(Problem("error", dotted, f"{dotted} ({path}) has mode {mode:04o}: readable by group/others", f"chmod 600 {path}"))
    return found


def _plaintext_transport(config: Config, skip=frozenset()) -> list[Problem]:
    found = []
    for dotted, key, value in walk_config(config.data):
        if key not in ("url", "vault_url", "address") or not isinstance(value, str) or dotted in skip:
            continue
        try:
            parsed = urlparse(value)
        except ValueError:  # reported by url_problems
            continue
        if parsed.scheme in ("http", "redis") and (parsed.hostname or "") not in LOOPBACK:
            found.append(Problem("warning", dotted, f"{dotted} uses plaintext {parsed.scheme}:// to {parsed.hostname}", f"use {'https' if parsed.scheme == 'http' else 'rediss'}://"))
    return found

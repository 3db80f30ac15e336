"""Configuration: file lookup, ``${VAR}`` interpolation, ``*_file`` indirection,
``ZEROTRUST_<SECTION>_<KEY>`` environment overrides, validation.

Lookup order: ``--config PATH`` > ``$ZEROTRUST_CONFIG`` >
``$XDG_CONFIG_HOME/zerotrust/config.yaml`` > ``/etc/zerotrust/config.yaml``.
No file at all is valid (defaults apply). The working directory is never
searched implicitly.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from pathlib import Path
from typing import Callable

from zerotrust_admin import fsutil
from zerotrust_admin.config import plainyaml
from zerotrust_admin.config import schema as S
from zerotrust_admin.errors import ConfigError, InsecureFileError, NotFoundError
from zerotrust_admin.secret import Secret, redact_url

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SYSTEM_CONFIG = Path("/etc/zerotrust/config.yaml")


def default_home(environ=None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("ZEROTRUST_HOME"):
        return Path(env["ZEROTRUST_HOME"]).expanduser()
    data = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "zerotrust"


def user_config_path(environ=None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "zerotrust" / "config.yaml"


def find_config_file(explicit: str | os.PathLike | None = None, environ=None) -> Path | None:
    env = os.environ if environ is None else environ
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist", hint="check --config")
        return path
    if env.get("ZEROTRUST_CONFIG"):
        path = Path(env["ZEROTRUST_CONFIG"]).expanduser()
        if not path.exists():
            raise ConfigError(f"config file {path} (from ZEROTRUST_CONFIG) does not exist", hint="unset ZEROTRUST_CONFIG or create the file")
        return path
    for candidate in (user_config_path(env), SYSTEM_CONFIG):
        if candidate.exists():
            return candidate
    return None


MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a real config is a few KiB
MAX_CONFIG_DEPTH = 32  # nesting of mappings and lists


MAX_INT_DIGITS = 64  # a config number is a port, a count or a duration; 5000 digits hit Python's int limit
_PLAIN_INT = re.compile(r"[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0o?[0-7_]+|[0-9][0-9_]*|[1-9][0-9_]*(:[0-5]?[0-9])+)")


def _refuse_aliases_and_depth(yaml, loader, text: str, where: str) -> None:
    """Walk the parser's events (nothing is constructed yet): an anchor or an
    alias is refused, naming its line, before any expansion can happen
    (threat model F4: nested aliases make a 499-byte file take 1 GB), and so
    is nesting deeper than MAX_CONFIG_DEPTH, a key written twice in one
    mapping at any level (YAML keeps the last one silently: a second
    ``access:`` would drop the first block's deny rules), and an integer of
    more than MAX_INT_DIGITS digits."""
    depth = 0
    # one frame per open collection: a mapping's keys seen so far (key -> line)
    # and whether the next node is a key; a list's index
    frames: list[dict] = []
    for event in yaml.parse(text, Loader=loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else "?"
        is_node = isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent))
        if is_node and frames:
            frame = frames[-1]
            if not frame["map"]:
                frame["at"] += 1
            elif frame["key_next"]:
                if isinstance(event, yaml.ScalarEvent):
                    first = frame["seen"].get(event.value)
                    frame["seen"][event.value] = line
                    frame["at"] = event.value
                    if first is not None:
                        lines = f"line {line}" if first == line else f"lines {first} and {line}"
                        raise ConfigError(f"{where} has the key {_shown_key(_dotted(frames))} twice, at {lines}; "
                                          "YAML would silently keep only the last one",
                                          hint="merge the two into one")
                elif not isinstance(event, yaml.AliasEvent):
                    raise ConfigError(f"{where} uses a mapping or list as a key at line {line}", hint="keys are plain names")
                frame["key_next"] = False
            else:
                frame["key_next"] = True
        if isinstance(event, yaml.ScalarEvent) and not event.style and len(event.value) > MAX_INT_DIGITS \
                and _PLAIN_INT.fullmatch(event.value):
            raise ConfigError(f"{where} has an integer of {len(event.value)} characters at line {line}; at most {MAX_INT_DIGITS} digits",
                              hint="quote it if it is meant as text")
        if isinstance(event, yaml.MappingStartEvent):
            frames.append({"map": True, "key_next": True, "seen": {}, "at": None})
        elif isinstance(event, yaml.SequenceStartEvent):
            frames.append({"map": False, "at": -1})
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frames.pop()
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(f"{where} uses a YAML alias (*{event.anchor}) at line {line}; aliases and anchors are not allowed in the config",
                              hint="write the value out in full where it is needed")
        if getattr(event, "anchor", None) is not None:
            raise ConfigError(f"{where} defines a YAML anchor (&{event.anchor}) at line {line}; aliases and anchors are not allowed in the config",
                              hint="write the value out in full where it is needed")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                raise ConfigError(f"{where} nests deeper than {MAX_CONFIG_DEPTH} levels at line {line}", hint="flatten the configuration")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _dotted(frames: list[dict]) -> str:
    """``access.policies[0].effect``: where the parser is, from the open frames."""
    out = ""
    for frame in frames:
        if frame["map"]:
            out += ("." if out else "") + str(frame["at"])
        else:
            out += f"[{frame['at']}]"
    return out


def _shown_key(key: str) -> str:
    from zerotrust_admin.textsafe import escape_line

    return repr(escape_line(key[:80]))


def read_config_text(path: Path) -> str:
    """The config file's text, read at most MAX_CONFIG_BYTES (+1) bytes, so a
    huge file or a device is refused instead of read whole."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes", hint="a configuration is a few KiB; check the path")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None


def parse_yaml(text: str, where: str) -> dict:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where} is larger than {MAX_CONFIG_BYTES} bytes", hint="a configuration is a few KiB; check the path")
    data = plainyaml.parse(text)
    if data is plainyaml.UNSUPPORTED:
        data = _parse_with_pyyaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a YAML mapping of sections, not {type(data).__name__}", hint="start with e.g. 'secrets:' at column 1")
    _tls_aliases(data, "")
    return data


def _parse_with_pyyaml(text: str, where: str):
    """Everything config/plainyaml.py leaves to PyYAML (and every error)."""
    import yaml

    # The C loader (libyaml) is ~8x faster; it parses the same safe subset.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _refuse_aliases_and_depth(yaml, loader, text, where)
        data = yaml.load(text, Loader=loader)  # nosec B506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}", hint="fix the YAML syntax (indentation, quotes, colons)") from None
    except (ValueError, OverflowError):  # a scalar the constructor cannot convert (an impossible date, 2026-13-45)
        raise ConfigError(f"{where} holds a value YAML cannot convert (an impossible date or number)",
                          hint="quote the value if it is meant as text") from None
    return data


# The seed document's names for a TLS block's certificate and key (issue 14);
# the code reads cert_file / key_file, which stay valid as aliases.
TLS_KEY_ALIASES = {"certificate": "cert_file", "private_key": "key_file"}


def _tls_aliases(node, dotted: str) -> None:
    """Rename tls.certificate / tls.private_key (in any ``tls`` block) to the
    names the code reads; both spellings with different values is an error."""
    if not isinstance(node, dict):
        return
    for key, value in list(node.items()):
        path = f"{dotted}.{key}" if dotted else str(key)
        if key == "tls" and isinstance(value, dict):
            for seed_name, name in TLS_KEY_ALIASES.items():
                if seed_name in value:
                    if name in value and value[name] != value[seed_name]:
                        raise ConfigError(f"{path}.{seed_name} and {path}.{name} name the same file differently",
                                          hint=f"keep one of them ({name} is an alias of {seed_name})")
                    value[name] = value.pop(seed_name)
        _tls_aliases(value, path)


def interpolate(value, environ, path: str = ""):
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"config key {path} uses ${{{name}}}, which is not set in the environment", hint=f"export {name}=... or write ${{{name}:-default}}")

    return _VAR.sub(replace, value)


def unknown_keys(data: dict, schema: dict = S.SCHEMA, prefix: str = "") -> list[tuple[str, str | None]]:
    """[(dotted key, suggestion)] for every key the schema does not know."""
    found = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            import difflib  # only for a mistake: kept off every command's start

            close = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1, cutoff=0.6)
            found.append((dotted, f"{prefix}{close[0]}" if close else None))
            continue
        sub = schema[key]
        if isinstance(sub, dict) and isinstance(value, dict):
            found.extend(unknown_keys(value, sub, dotted + "."))
    return found


def type_errors(data: dict, schema: dict = S.SCHEMA, prefix: str = "") -> list[str]:
    errors = []
    for key, value in data.items():
        sub = schema.get(key)
        dotted = f"{prefix}{key}"
        if sub is None or sub is S.FREE or value is None:
            continue
        if isinstance(sub, dict):
            if not isinstance(value, dict):
                errors.append(f"{dotted} must be a mapping, not {type(value).__name__}")
            else:
                errors.extend(type_errors(value, sub, dotted + "."))
        elif sub is S.LIST:
            if not isinstance(value, list):
                errors.append(f"{dotted} must be a list, not {type(value).__name__}")
        elif isinstance(sub, tuple):
            if isinstance(value, bool) and bool not in sub:
                errors.append(f"{dotted} must be {' or '.join(t.__name__ for t in sub)}, not a boolean")
            elif not isinstance(value, sub):
                errors.append(f"{dotted} must be {' or '.join(t.__name__ for t in sub)}, not {type(value).__name__}")
    return errors


def _schema_at(path: list[str]):
    node = S.SCHEMA
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def protected_setting(path: list[str]) -> str | None:
    """The protected prefix (``"audit"``, ``"encryption.hsm"``) a key path falls
    under, or None: those settings come from the config file only (P1)."""
    dotted = ".".join(path)
    for prefix in S.ENV_PROTECTED:
        if dotted == prefix or dotted.startswith(prefix + "."):
            return prefix
    return None


def refused_overrides(environ) -> list[tuple[str, str]]:
    """[(variable, dotted key)] for every ZEROTRUST_<SECTION>_<KEY> variable that
    would change a protected setting. Set at all (even empty) is refused: an
    empty ``ZEROTRUST_ACCESS_POLICIES`` would drop every policy."""
    return [(var, ".".join(path)) for path, _value, var in env_overrides(environ, include_protected=True)
            if protected_setting(path) is not None]


def env_overrides(environ, *, include_protected: bool = False) -> list[tuple[list[str], str, str]]:
    """[(path, value, variable)] from ZEROTRUST_<SECTION>_<KEY> variables
    (without the protected ones unless asked: those are refused, never applied)."""
    found = []
    for var, value in environ.items():
        if not var.startswith("ZEROTRUST_") or var in S.NON_CONFIG_ENV:
            continue
        words = var[len("ZEROTRUST_"):].lower().split("_")
        section = words[0]
        if section not in S.SCHEMA or len(words) < 2:
            continue
        path = _split_known([section], words[1:])
        if include_protected or protected_setting(path) is None:
            found.append((path, value, var))
    return found


def _split_known(path: list[str], words: list[str]) -> list[str]:
    """Greedy match of ``words`` against the schema (``rotation_master_days`` ->
    rotation.master_days); unknown remainders become one flat key."""
    for cut in range(len(words), 0, -1):
        candidate = "_".join(words[:cut])
        node = _schema_at(path + [candidate])
        if node is not None:
            if cut == len(words):
                return path + [candidate]
            if isinstance(node, dict):
                return _split_known(path + [candidate], words[cut:])
            if node is S.FREE:  # a provider's own block: the rest is one key inside it
                return path + [candidate, "_".join(words[cut:])]
    return path + ["_".join(words)]


def _coerce(value: str, node, var: str):
    if node == S.INT:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{var} is not an integer") from None
    if node == S.BOOL:
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{var} is not a boolean", hint="use true or false")
    if node is S.LIST:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _empty_sections(data, schema=S.SCHEMA):
    """A section written with everything below it commented out (``redis:``)
    parses as None; treat it as an empty mapping, as an operator would expect."""
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        sub = schema.get(key) if isinstance(schema, dict) else None
        if value is None and (isinstance(sub, dict) or sub is S.FREE):
            out[key] = {}
        elif isinstance(sub, dict):
            out[key] = _empty_sections(value, sub)
        else:
            out[key] = value
    return out


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dotted_get(data: dict, dotted: str, default=None):
    """``data["a"]["b"]`` for ``"a.b"``, or ``default`` where the path stops."""
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


class Config:
    """The effective configuration. ``data`` never holds a ``*_file``'s content:
    secrets are read on demand by ``get_secret``."""

    def __init__(self, data: dict, *, path: Path | None, raw: dict, environ, home: Path):
        self.data = data
        self.path = path
        self.raw = raw
        self.environ = environ
        self.home = home
        self.env_applied: list[str] = []
        self.secret_resolver: Callable[[str], Secret] | None = None

    def __repr__(self) -> str:
        return f"Config(path={str(self.path) if self.path else None!r})"

    def section(self, name: str) -> dict:
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}

    def get(self, dotted: str, default=None):
        return dotted_get(self.data, dotted, default)

    @property
    def provider(self) -> str:
        name = str(self.get("secrets.provider") or "local").lower()
        return S.PROVIDER_ALIASES.get(name, name)

    @property
    def vault_path(self) -> Path:
        return self.home / "vault.db"

    @property
    def audit_path(self) -> Path:
        configured = self.get("audit.path")
        return Path(configured).expanduser() if configured else self.home / "audit.log"

    def get_secret(self, dotted: str) -> Secret | None:
        """Resolve a secret setting: the value (or env override), ``<key>_file``,
        or a ``vault:NAME`` reference resolved through the secret provider."""
        value = self.get(dotted)
        if isinstance(value, str) and value.startswith("vault:"):
            if self.secret_resolver is None:
                raise ConfigError(f"{dotted} refers to {value!r} but no secret provider is available to resolve it")
            return self.secret_resolver(value[len("vault:"):])
        if value not in (None, ""):
            return Secret(str(value))
        file_path = self.get(dotted + "_file")
        if file_path:
            return Secret(read_secret_file(Path(str(file_path)).expanduser(), dotted + "_file"))
        return None

    def redacted(self) -> dict:
        return redact(self.data)

    def own_files(self) -> list[Path]:
        """Files outside ``$ZEROTRUST_HOME`` that the tool reads its keys,
        settings and state from: the config file, the audit log with its key,
        anchor and checkpoints, the master key file (and ``.previous``), the
        signing key and its ``.pub``, and every ``*_file``, ``path``, ``keytab``,
        ``module``, ``kvno`` or ``krb5_config`` setting (a password file, the
        sessions database, the PKCS#11 module, ...)."""
        files: list[Path] = [self.path] if self.path is not None else []
        audit = self.audit_path
        files += [audit, audit.with_name("audit.key"), audit.with_name(audit.name + ".head"), audit.with_name(audit.name + ".checkpoints")]
        key_file = self.get("encryption.key_file")
        if isinstance(key_file, str) and key_file:
            key = Path(key_file).expanduser()
            files += [key, key.with_name(key.name + ".previous")]
        from zerotrust_admin.signing import public_path, signing_settings

        signing_key = signing_settings(self, self.home)["key_file"]
        files += [signing_key, public_path(signing_key)]

        def walk(node, key: str = "") -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, str(k))
            elif isinstance(node, list):
                for v in node:
                    walk(v, key)
            elif isinstance(node, str) and node and (key.endswith("_file") or key in ("path", "keytab", "module", "kvno", "krb5_config")):
                files.append(Path(node).expanduser())

        walk(self.data)
        return files

    def check_output(self, path) -> Path:
        """A user-chosen output path (``-o``), refused (exit 2) before anything
        is written when it would replace one of the tool's own files
        (``fsutil.check_output_path``: inside ``$ZEROTRUST_HOME``, or one of
        ``own_files``) or lies in a world-writable directory without the
        sticky bit."""
        return fsutil.check_output_path(Path(path), own_dirs=[self.home], own_files=self.own_files())


def check_audit_path(data: dict) -> None:
    """``audit.path``, when it exists, must be a regular file: a device
    (``/dev/null``), a fifo, a directory or a symlink is refused before
    anything is written next to it (threat model F3)."""
    configured = dotted_get(data, "audit.path")
    if not configured or not isinstance(configured, str):
        return
    path = Path(configured).expanduser()
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # created 0600 on first use (or refused then, naming the parent)
    if stat.S_ISREG(st.st_mode):
        return
    kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a fifo" if stat.S_ISFIFO(st.st_mode)
            else "not a regular file")
    raise ConfigError(f"audit.path {path} is {kind}; the audit log must be a regular file",
                      hint="point audit.path at a file (it is created 0600 if missing)")


URL_KEYS = ("url", "endpoint_url", "events_url", "vault_url", "address", "authority_host")


def url_problems(data: dict, prefix: str = "") -> list[tuple[str, str, str]]:
    """[(dotted key, message, hint)] for every URL setting that does not parse:
    a port that is not a number from 0 to 65535, an unbalanced ``[``, no host.
    A password with an unencoded ``/``, ``?``, ``#``, ``@`` or ``[`` ends the
    host part early and shows up here. Messages show the URL redacted, and
    never the parser's own words (they can quote a piece of the password)."""
    from urllib.parse import urlsplit

    found = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            found.extend(url_problems(value, dotted + "."))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    found.extend(url_problems(item, f"{dotted}[{i}]."))
        elif key in URL_KEYS and isinstance(value, str) and "://" in value:
            shown = redact_url(value, value=True)
            try:
                parts = urlsplit(value)
                bad_port = False
                try:
                    parts.port
                except ValueError:
                    bad_port = True
            except ValueError:
                found.append((dotted, f"{dotted} {shown} is not a valid URL (an unbalanced '[' in the host or the password)",
                              "percent-encode special characters of a password (%5B for '[') or move the password to password_file"))
                continue
            if bad_port:
                found.append((dotted, f"{dotted} {shown} is not a valid URL: its port is not a number from 0 to 65535",
                              "fix the port; a '/', '?', '#' or '@' in a password must be percent-encoded (%2F, %3F, %23, %40) "
                              "or the password moved to password_file"))
            elif not parts.hostname and parts.scheme not in ("unix", "file"):
                found.append((dotted, f"{dotted} {shown} is not a valid URL: it names no host", "write scheme://host[:port]/..."))
    return found


def read_secret_file(path: Path, key: str) -> bytes:
    try:
        data = fsutil.read_private_file(path, what=f"{key} file")
    except NotFoundError:
        raise ConfigError(f"{key} points to {path}, which does not exist", hint="create the file (mode 0600) or fix the path") from None
    except InsecureFileError as exc:
        raise InsecureFileError(f"{key}: {exc.message}", hint=exc.hint) from None
    return data.rstrip(b"\r\n")


def redact(value, key: str = ""):
    if key == "secret_rotation" and isinstance(value, list):  # its "secret" is a vault secret's NAME, shown as is
        return [{k: (v if k == "secret" else redact(v, str(k))) for k, v in e.items()} if isinstance(e, dict) else redact(e, key) for e in value]
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if key in S.SECRET_KEYS and value not in (None, "") and not (isinstance(value, str) and value.startswith("vault:")):
        return "<redacted>"
    if isinstance(value, str):
        return redact_url(value, value=True)  # redis://:PASS@host, also with a space in PASS (F5)
    return value


def load_config(explicit: str | os.PathLike | None = None, environ=None, *, validate: bool = True) -> Config:
    env = dict(os.environ if environ is None else environ)
    refused = refused_overrides(env)
    if refused:
        var, dotted = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise ConfigError(f"environment variable {var}{more} would override {dotted}, a security setting that only the config file may set",
                          hint=f"unset {var}; see 'Environment overrides' in docs/configuration.md")
    path = find_config_file(explicit, env)
    raw: dict = {}
    if path is not None:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) & 0o022:
            raise InsecureFileError(f"config file {path} is writable by group or others", hint=f"chmod 600 {path}")
        raw = parse_yaml(read_config_text(path), f"config file {path}")
    if validate:
        unknown = unknown_keys(raw)
        if unknown:
            key, suggestion = unknown[0]
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ConfigError(
                f"unknown config key {key!r}{more} in {path}",
                hint=(f"did you mean {suggestion!r}? " if suggestion else "") + "run: zerotrust-admin config check",
            )
    data = _empty_sections(interpolate(raw, env))
    data = _merge(S.DEFAULTS, data)
    applied = []
    for keypath, value, var in env_overrides(env):
        node = data
        for part in keypath[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{var} overrides a key below {'.'.join(keypath[:-1])}, which is not a mapping")
        node[keypath[-1]] = _coerce(value, _schema_at(keypath), var)
        applied.append(var)
    if validate:
        problems = type_errors(data)
        if problems:
            raise ConfigError(f"invalid config: {problems[0]}", hint="run: zerotrust-admin config check")
        provider = str(data.get("secrets", {}).get("provider") or "local").lower()
        if S.PROVIDER_ALIASES.get(provider, provider) not in S.PROVIDERS:
            raise ConfigError(f"secrets.provider {provider!r} is not one of {', '.join(S.PROVIDERS)}")
    home = default_home(env)
    if validate:
        bad_urls = url_problems(data)
        if bad_urls:
            _dotted_key, message, hint = bad_urls[0]
            raise ConfigError(message, hint=hint)
        fsutil.check_home_dir(home)
        check_audit_path(data)
    config = Config(data, path=path, raw=raw, environ=env, home=home)
    config.env_applied = applied
    return config

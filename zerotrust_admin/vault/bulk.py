"""Bulk formats for ``vault import`` / ``vault export``: .env and JSON.

.env: ``NAME=value`` lines; values are double-quoted on export with
backslash escapes (\\\\ \\" \\n \\r \\t \\$); ``#`` comments, blank lines,
``export`` prefixes and single-quoted (literal) values are accepted on import.
JSON: ``{"format": "zerotrust-export", "version": 1, "secrets": {NAME: {"value": TEXT}
| {"value_base64": B64}}}``; a flat ``{NAME: TEXT}`` object is accepted on import.
Binary values only travel as JSON (base64); a .env export of one is refused.
"""

from __future__ import annotations

import base64
import binascii
import json

from zerotrust_admin.errors import UsageError
from zerotrust_admin.names import validate_name

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_env(text: str, source: str = ".env") -> list[tuple[str, bytes]]:
    items: list[tuple[str, bytes]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        if "=" not in stripped:
            raise UsageError(f"{source} line {number}: expected NAME=value")
        name, _, rest = stripped.partition("=")
        name = name.strip()
        try:
            validate_name(name)
        except UsageError as exc:
            raise UsageError(f"{source} line {number}: {exc.message}", hint=exc.hint) from None
        items.append((name, _parse_env_value(rest.strip(), source, number).encode("utf-8")))
    return items


def _parse_env_value(raw: str, source: str, number: int) -> str:
    if raw.startswith('"'):
        out = []
        i = 1
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                nxt = raw[i + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if ch == '"':
                tail = raw[i + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise UsageError(f"{source} line {number}: unexpected text after the closing quote")
                return "".join(out)
            out.append(ch)
            i += 1
        raise UsageError(f"{source} line {number}: unterminated double quote")
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end < 0:
            raise UsageError(f"{source} line {number}: unterminated single quote")
        return raw[1:end]
    # Unquoted: an inline comment starts at " #".
    hash_at = raw.find(" #")
    return (raw[:hash_at] if hash_at >= 0 else raw).strip()


def format_env(items) -> str:
    lines = []
    for name, value in items:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"secret {name!r} is binary and cannot be written to a .env file", hint="export as JSON (--format json), which carries binary values as base64") from None
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace("$", "\\$")
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + ("\n" if lines else "")


def parse_json(text: str, source: str = "JSON") -> list[tuple[str, bytes]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source} must be a JSON object")
    entries = data["secrets"] if data.get("format") == "zerotrust-export" and isinstance(data.get("secrets"), dict) else data
    items = []
    for name, entry in entries.items():
        validate_name(name)
        if isinstance(entry, str):
            items.append((name, entry.encode("utf-8")))
        elif isinstance(entry, dict) and isinstance(entry.get("value"), str):
            items.append((name, entry["value"].encode("utf-8")))
        elif isinstance(entry, dict) and isinstance(entry.get("value_base64"), str):
            try:
                items.append((name, base64.b64decode(entry["value_base64"], validate=True)))
            except (binascii.Error, ValueError):
                raise UsageError(f"{source}: value_base64 of {name!r} is not valid base64") from None
        else:
            raise UsageError(f"{source}: entry {name!r} must be a string or an object with value / value_base64")
    return items


def format_json(items) -> str:
    secrets = {}
    for name, value in items:
        try:
            secrets[name] = {"value": value.decode("utf-8")}
        except UnicodeDecodeError:
            secrets[name] = {"value_base64": base64.b64encode(value).decode("ascii")}
    return json.dumps({"format": "zerotrust-export", "version": 1, "secrets": secrets}, indent=2) + "\n"


def detect_format(filename: str, explicit: str | None) -> str:
    if explicit:
        fmt = explicit.lower().lstrip(".")
        if fmt not in ("env", "json"):
            raise UsageError(f"unknown format {explicit!r}", hint="use env or json")
        return fmt
    lowered = filename.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith(".env") or lowered.rsplit("/", 1)[-1].startswith(".env"):
        return "env"
    raise UsageError(f"cannot tell the format of {filename!r} from its name", hint="pass --format env or --format json")

"""What ``vault import`` will write, decided once for the real run and the dry
run alike (issue 14: a dry run that promised what the real run refused).

Everything the provider would refuse is refused here first, naming the line of
a .env file: a bad name, an empty value, a value over the 1 MiB limit, a
truncated zerotrust export. ``KEY=`` lines (common in .env files) cannot be
stored, since the vault keeps no empty secrets: they are refused with a hint,
or with ``skip_empty`` left out and listed in a warning. A name given twice
keeps its last value, as python-dotenv and Docker Compose do.

.env files are read by python-dotenv's own parser (``dotenv_values(stream,
interpolate=False)`` semantics: ``export``, quotes, escapes, inline comments,
multi-line double-quoted values such as PEM keys), so a file that Docker
Compose and python-dotenv accept is accepted here, with one deliberate
addition: ``\\$`` inside double quotes is a literal ``$``, the escape
``vault export --format env`` writes. A line python-dotenv would skip as
unparseable is refused, naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from zerotrust_admin.errors import UsageError


@dataclass
class ImportPlan:
    source: str
    items: list[tuple[str, bytes]]
    skipped_empty: list[str] = field(default_factory=list)  # "line 3: EMPTY" (.env) or "EMPTY" (JSON)
    repeated: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.items]

    def warnings(self) -> list[str]:
        out = []
        if self.skipped_empty:
            out.append(f"{self.source}: skipped {len(self.skipped_empty)} empty value(s) (--skip-empty): {', '.join(self.skipped_empty)}")
        if self.repeated:
            out.append(f"{self.source}: {', '.join(self.repeated)} given more than once; the last value is imported")
        return out

    def to_dict(self) -> dict:
        return {"entries": len(self.items), "names": self.names, "skipped_empty": self.skipped_empty, "repeated": self.repeated}


def check_new_name(name: str, where: str = "") -> str:
    """A name for a NEW secret must not start with '-': every command after
    put would read it as an option (an existing one stays reachable after --)."""
    if name.startswith("-"):
        raise UsageError(f"{where}secret name {name!r} starts with '-', which every command would read as an option",
                         hint=f"choose a name that starts with a letter, digit, '.' or '_' (an existing one: zerotrust-admin vault get -- {name})")
    return name


def _env_line_of(text: str, name: str, nth: int) -> int | None:
    """The line number of the ``nth`` (0-based) assignment of ``name`` (a
    multi-line value's continuation lines are not assignments)."""
    import io

    from dotenv.parser import parse_stream

    seen = 0
    for binding in parse_stream(io.StringIO(text)):
        if binding.key == name:
            if seen == nth:
                return binding.original.line
            seen += 1
    return None


def _parse_json(text: str, source: str):
    from zerotrust_admin.vault import bulk

    try:
        data = json.loads(text)
    except ValueError:
        data = None  # bulk.parse_json owns the message
    if isinstance(data, dict) and data.get("format") == "zerotrust-export" and not isinstance(data.get("secrets"), dict):
        raise UsageError(f"{source} is a zerotrust export without its \"secrets\" object (truncated?)",
                         hint="export again with: zerotrust-admin vault export --format json -o FILE; nothing was written")
    return bulk.parse_json(text, source)


def parse_dotenv(text: str, source: str) -> list[tuple[str, bytes]]:
    """(name, value) pairs in file order; every name checked, every line parsed."""
    import io

    from dotenv.parser import parse_stream

    from zerotrust_admin.names import validate_name

    items = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise UsageError(f"{source} line {line}: cannot parse this line (an unterminated quote, or text after the closing quote?)",
                             hint="write NAME=value, NAME=\"value\" or NAME='value'; nothing was written")
        if binding.key is None:
            continue  # a blank line or a comment
        try:
            validate_name(binding.key)
        except UsageError as exc:
            raise UsageError(f"{source} line {line}: {exc.message}", hint=exc.hint) from None
        if binding.value is None:
            raise UsageError(f"{source} line {line}: expected NAME=value, found only the name {binding.key}",
                             hint="write NAME=value; nothing was written")
        value = binding.value
        if binding.original.string.split("=", 1)[1].lstrip().startswith('"'):
            value = value.replace("\\$", "$")  # vault export's escape of a '$' (python-dotenv keeps the backslash)
        items.append((binding.key, value.encode("utf-8")))
    return items


def plan_import(raw: bytes, kind: str, source: str, *, skip_empty: bool = False) -> ImportPlan:
    """Parse and validate every entry; raise UsageError (exit 2) naming the
    first refused one. Nothing here touches the vault."""
    from zerotrust_admin.vault.records import MAX_VALUE_BYTES

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text", hint="binary values go in JSON as value_base64") from None
    parsed = parse_dotenv(text, source) if kind == "env" else _parse_json(text, source)
    plan = ImportPlan(source, [])
    seen: dict[str, int] = {}
    last: dict[str, bytes] = {}
    for name, value in parsed:
        if name.startswith("-"):
            line = _env_line_of(text, name, 0) if kind == "env" else None
            check_new_name(name, f"{source} line {line}: " if line else f"{source}: ")
        nth = seen.get(name, 0)
        seen[name] = nth + 1
        if value and len(value) <= MAX_VALUE_BYTES and name not in last:
            last[name] = value  # the common case: no line number needed (finding it is a scan of the file)
            continue
        line = _env_line_of(text, name, nth) if kind == "env" and (not value or len(value) > MAX_VALUE_BYTES) else None
        where = f"{source} line {line}: {name}" if line else f"{source}: {name}"
        if not value:
            if skip_empty:
                plan.skipped_empty.append(f"line {line}: {name}" if line else name)
                continue
            raise UsageError(f"{where} has an empty value, and the vault cannot store an empty secret",
                             hint="give it a value, remove the line, or pass --skip-empty to import the others without it; nothing was written")
        if len(value) > MAX_VALUE_BYTES:
            raise UsageError(f"{where} is {len(value)} bytes; the limit for one secret is {MAX_VALUE_BYTES} (1 MiB)",
                             hint="store large files elsewhere and keep their key here; nothing was written")
        if name in last and name not in plan.repeated:
            plan.repeated.append(name)
        last[name] = value
    plan.items = list(last.items())
    return plan

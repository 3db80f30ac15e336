"""Output for people and for scripts. Data on stdout, diagnostics on stderr.

rich is imported only when a table or progress bar is drawn on a terminal;
when stdout is not a terminal, tables are plain tab-separated lines.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable, Sequence

PROG = "zerotrust-admin"

from zerotrust_admin.textsafe import escape_line, escape_text  # noqa: F401  (escape_text: re-exported for the commands)

# escape_text (threat model F2): every character that is not printable (C0
# incl. tab and newline, DEL, C1, ESC sequences, U+2028/U+2029 line and
# paragraph separators, bidi overrides, other format characters) is shown
# escaped, ``\\x1b``, ``\\t``, ``\\n``, ``\\u2028``; a backslash is doubled.
# Every text renderer runs data it did not write (principals, resources,
# secret names, metadata) through it; --json output needs nothing more (JSON
# escapes controls itself; U+2028/U+2029 are escaped by json.dumps too).


def tsv_line(cells: Iterable[object]) -> str:
    """One tab-separated line of escaped fields, newline-terminated: a field
    can neither start a new line nor add a column."""
    return "\t".join(escape_text(c) for c in cells) + "\n"


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def emit_json_line(obj) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")


def _diagnostic(text: str, *, one_line: bool = True) -> str:
    """A message for stderr: URL passwords redacted (F5), controls escaped (F2).
    An error or warning is one line: a newline inside it (from a path, a
    principal, a value) is escaped like any control; ``info`` messages may
    keep the line breaks they were written with."""
    from zerotrust_admin.secret import redact_url

    text = redact_url(text)
    if one_line:
        return escape_line(text)
    return "\n".join(escape_line(line) for line in text.split("\n"))


def info(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        sys.stderr.write(_diagnostic(message, one_line=False) + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {_diagnostic(message)}\n")


def error_line(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"{PROG}: error: {_diagnostic(message)}\n")
    if hint:
        sys.stderr.write(f"  hint: {_diagnostic(hint)}\n")
    sys.stderr.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]], *, highlight=None) -> None:
    """Rows as a rich table on a terminal, else as TSV lines; every cell escaped
    (``escape_text``) and, on a terminal, never read as rich markup."""
    rows = [[escape_text(c) for c in row] for row in rows]
    if not sys.stdout.isatty():
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        style = highlight(row) if highlight else None
        t.add_row(*(Text(cell) for cell in row), style=style)
    Console().print(t)


def confirm(question: str, *, yes: bool) -> bool:
    """True when --yes was given or the operator answered yes on a terminal.

    Without a terminal and without --yes, refuse rather than guess.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        from zerotrust_admin.errors import UsageError

        raise UsageError("this command changes or reveals data and stdin is not a terminal", hint="pass --yes to confirm non-interactively")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")

"""Output for people and for scripts. Data on stdout, diagnostics on stderr.

rich is imported only when a table or progress bar is drawn on a terminal;
when stdout is not a terminal, tables are plain tab-separated lines.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable, Sequence

PROG = "zerotrust-admin"

from zerotrust_admin.errors import ZeroTrustError
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


# Set by the entry point when --json is on the command line: errors are then one
# JSON object on stderr, {"error": {"code", "kind", "message", "hint"}}.
JSON_MODE = False
KINDS = {1: "failed", 2: "usage", 3: "not_found", 4: "denied", 5: "integrity", 6: "unavailable", 7: "busy", 130: "interrupted"}


def error_line(message: str, hint: str | None = None, details=(), *, code: int = 1) -> None:
    """``error: message``, then one indented line per detail (the steps of a
    partial failure), then ``hint: ...``; in --json mode one JSON object with
    the same content (a stable contract: docs/cli-json.md)."""
    if JSON_MODE:
        from zerotrust_admin.secret import redact_url

        error = {"code": code, "kind": KINDS.get(code, "failed"), "message": redact_url(message), "hint": redact_url(hint) if hint else None}
        if details:
            error["details"] = [redact_url(line) for line in details]
        sys.stderr.write(json.dumps({"error": error}) + "\n")  # json.dumps escapes every control character
        sys.stderr.flush()
        return
    sys.stderr.write(f"{PROG}: error: {_diagnostic(message)}\n")
    for line in details:
        sys.stderr.write(f"  {_diagnostic(line)}\n")
    if hint:
        sys.stderr.write(f"  hint: {_diagnostic(hint)}\n")
    sys.stderr.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]], *, highlight=None,
          keep: Sequence[str] = (), drop: Sequence[str] = (), width: int | None = None) -> None:
    """Rows as a rich table on a terminal, else as TSV lines; every cell escaped
    (``escape_text``) and, on a terminal, never read as rich markup.

    ``keep`` names the columns an operator copies from (IDs, principals): they
    are never shortened with an ellipsis at any width. When the table does not
    fit the terminal, the columns named in ``drop`` are left out, first named
    first, until it does (``--json`` and piped output always have every column);
    what still does not fit is folded onto more lines, never cut."""
    rows = [[escape_text(c) for c in row] for row in rows]
    if not sys.stdout.isatty():
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        return
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=width) if width else Console()
    shown = list(range(len(columns)))

    def natural(i: int) -> int:
        return max([cell_len(columns[i])] + [cell_len(row[i]) for row in rows])

    def needed() -> int:  # the rich default box: one border plus a space either side per column
        return sum(natural(i) + 3 for i in shown) + 1

    for name in drop:
        if needed() <= console.width:
            break
        if name in columns and columns.index(name) in shown:
            shown.remove(columns.index(name))
    kept = [i for i in shown if columns[i] in keep]
    others = [i for i in shown if columns[i] not in keep]
    room = console.width - 1 - sum(natural(i) + 3 for i in kept) - 3 * len(others)
    widths = {i: natural(i) for i in others}
    if room < sum(min(w, 8) for w in widths.values()):
        _records(console, title, list(columns), rows, highlight)  # too narrow for a table
        return
    while sum(widths.values()) > room:  # shrink the widest of the other columns; they fold, never "…"
        widest = max(widths, key=lambda i: widths[i])
        widths[widest] -= 1
    t = Table(title=title, header_style="bold")
    for i in shown:
        if i in widths:
            t.add_column(columns[i], overflow="fold", width=widths[i])
        else:  # an ID or principal: on one line, whole
            t.add_column(columns[i], no_wrap=True, overflow="fold", min_width=natural(i))
    for row in rows:
        style = highlight(row) if highlight else None
        t.add_row(*(Text(row[i]) for i in shown), style=style)
    console.print(t)


def _records(console, title: str | None, columns: Sequence[str], rows: list[list[str]], highlight) -> None:
    """A table too wide for the terminal as one "COLUMN: value" block per row,
    every column kept and no value cut (the terminal wraps a long line, it
    does not lose it)."""
    from rich.text import Text

    label = max(len(c) for c in columns)
    if title:
        console.print(Text(title, style="bold"))
    for n, row in enumerate(rows):
        if n:
            console.print()
        style = highlight(row) if highlight else None
        for col, cell in zip(columns, row):
            console.print(Text(f"{col.rjust(label)}: {cell}", style=style or ""), soft_wrap=True)


ABORTED = "aborted; nothing was changed"


class suggest_wait:
    """Around a command that takes ``--wait SECONDS``: a busy error (exit 7)
    says that the command can wait instead of failing."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and getattr(exc, "exit_code", None) == 7 and "--wait" not in (exc.hint or ""):
            exc.hint = (exc.hint + "; or " if exc.hint else "") + "let this command wait for it: add --wait SECONDS (e.g. --wait 60)"
        return False


class AbortedError(ZeroTrustError):
    """The operator said no (or Ctrl-D) at a confirmation: exit 1, one line."""

    exit_code = 1


def confirm(question: str, *, yes: bool) -> bool:
    """True when --yes was given or the operator answered yes on a terminal;
    any other answer (Enter, n, Ctrl-D) ends the command with the one
    ``aborted; nothing was changed`` line (exit 1).

    Without a terminal and without --yes, refuse rather than guess.
    """
    if yes:
        return True
    from zerotrust_admin.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError("this command changes or reveals data and stdin is not a terminal", hint="pass --yes to confirm non-interactively")
    from zerotrust_admin.cli.terminal import prompting

    with prompting():
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        line = sys.stdin.readline()
    if not line.endswith("\n"):  # Ctrl-D: the cursor is still on the question's line
        sys.stderr.write("\n")
    if line.strip().lower() not in ("y", "yes"):
        raise AbortedError(ABORTED)
    return True

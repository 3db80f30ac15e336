"""Output for people and for scripts. Data on stdout, diagnostics on stderr.

rich is imported only when a table or progress bar is drawn on a terminal;
when stdout is not a terminal, tables are plain tab-separated lines.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable, Sequence

PROG = "zerotrust-admin"


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def emit_json_line(obj) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")


def info(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        sys.stderr.write(message + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}\n")


def error_line(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")
    sys.stderr.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]], *, highlight=None) -> None:
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    if not sys.stdout.isatty():
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        style = highlight(row) if highlight else None
        t.add_row(*row, style=style)
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

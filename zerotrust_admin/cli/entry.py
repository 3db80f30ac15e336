"""Process entry point: hardening, the one top-level error handler, and a fast
path for ``vault get`` (the command scripts and the broker call most), which
skips importing Typer. Every other command goes through the Typer app.
"""

from __future__ import annotations

import os
import sys

from zerotrust_admin.cli.output import error_line
from zerotrust_admin.errors import ZeroTrustError


def harden_process() -> None:
    """Files 0600/dirs 0700 whatever the caller's umask; no core dumps of secrets
    (the same protection the Python API applies: secret.protect_process)."""
    os.umask(0o077)
    from zerotrust_admin.secret import protect_process

    protect_process()


def _click_exceptions():
    try:  # Typer >= 0.2x vendors click
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older Typer with click
        from click import exceptions
    return exceptions


# The root options (cli/app.py ``root``): the ones that take a value, and flags.
_ROOT_VALUE_OPTIONS = ("--config", "-c")
_ROOT_FLAGS = ("--json", "--quiet", "-q", "--verbose", "-v")


def invoked_command(argv: list[str]) -> tuple[str | None, str | None]:
    """(top-level name, command of that group) that ``argv`` invokes, as far
    as that is certain; (None, None) means the whole app: root help,
    completion, an unknown name or a root option this does not know, so
    Typer gives its usual answer. ``--version`` needs the root alone ("")."""
    from zerotrust_admin.cli.app import TOP_LEVEL

    if any(key.startswith("_ZEROTRUST_ADMIN_COMPLETE") or key == "_TYPER_COMPLETE_ARGS" for key in os.environ):
        return None, None  # shell completion walks the whole tree
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _ROOT_VALUE_OPTIONS:
            i += 2
        elif token in _ROOT_FLAGS or token.startswith("--config=") or token in ("--help", "-h"):
            i += 1
        elif token == "--version":
            return "", None  # eager: prints the version before any command is looked at
        elif token not in TOP_LEVEL:
            return None, None
        else:
            sub = argv[i + 1] if i + 1 < len(argv) else None
            return token, (sub if sub and not sub.startswith("-") and TOP_LEVEL[token][2] == "group" else None)
    if any(token in ("--help", "-h") for token in argv) or not argv:
        from zerotrust_admin.cli.app import ROOT_HELP

        return "", ROOT_HELP
    return None, None


def _run_typer(argv: list[str]) -> int:
    """Run the Typer app, turning click's usage errors into our one-line format
    (click's own rendering draws a multi-line box)."""
    # Help in click's plain layout, as docs/cli-reference.md renders it: at 80
    # columns rich's panels squeezed descriptions and cut long words with "…"
    # (issue 14), and it keeps rich out of --help's start-up.
    os.environ.setdefault("TYPER_USE_RICH", "0")
    import typer

    from zerotrust_admin.cli.app import build_app

    app = build_app(*invoked_command(argv))
    exc_types = _click_exceptions()
    try:
        rv = app(args=argv, prog_name="zerotrust-admin", standalone_mode=False)
    except exc_types.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")
            return 2
        path = ctx.command_path if ctx is not None else "zerotrust-admin"
        error_line(exc.format_message(), f"see '{path} --help'" if isinstance(exc, exc_types.UsageError) else None, code=exc.exit_code)
        return exc.exit_code
    except typer.Abort:  # Typer turns Ctrl-D (EOFError) anywhere in a command into Abort
        _interrupted(1)
        return 1
    if rv == INTERRUPTED:  # Typer turns Ctrl-C (KeyboardInterrupt) into a silent Exit(130); no command returns 130 itself
        _interrupted(INTERRUPTED)
    return rv if isinstance(rv, int) else 0


INTERRUPTED = 130


def _interrupted(code: int) -> None:
    """One line for Ctrl-C / Ctrl-D: "aborted; nothing was changed" when it
    answered a prompt (nothing was done yet), else "interrupted"."""
    from zerotrust_admin.cli import terminal
    from zerotrust_admin.cli.output import ABORTED

    if terminal.ABANDONED and code == INTERRUPTED and sys.stderr.isatty():
        sys.stderr.write("\n")  # Ctrl-C leaves the cursor after the prompt (Typer already ended the line for Ctrl-D)
    error_line(ABORTED if terminal.ABANDONED else "interrupted", code=code)


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    finally:
        # The command is over: every write was closed and synced before it
        # was acknowledged, and the AppContext has closed the vault and the
        # stores. What remains is the interpreter's teardown, whose garbage
        # collection walks every object of every imported module (50-100 ms
        # after redis-py or Typer). Frozen objects are left to the process's
        # exit; only cyclic garbage goes unfinalized, which is what a crash
        # after the last write leaves, and the design survives that (V4).
        import gc

        gc.freeze()


def _main(argv: list[str] | None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    harden_process()
    from zerotrust_admin.cli import output

    output.JSON_MODE = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    debug = os.environ.get("ZEROTRUST_DEBUG") == "1"
    try:
        from zerotrust_admin.cli import fastpath

        fast = fastpath.parse(argv)
        if fast is not None:
            sys.exit(fast())
        sys.exit(_run_typer(argv))
    except ZeroTrustError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        error_line(exc.message, exc.hint, getattr(exc, "detail_lines", ()), code=exc.exit_code)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # the fast path, or outside a command
        _interrupted(INTERRUPTED)
        sys.exit(INTERRUPTED)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # never show the message: an SDK error can carry a secret
        if debug:
            import traceback

            traceback.print_exc()
        error_line(f"internal error ({type(exc).__name__})", "re-run with ZEROTRUST_DEBUG=1 for a traceback, and report it")
        sys.exit(1)

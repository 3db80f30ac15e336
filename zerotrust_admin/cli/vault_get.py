"""``vault get``'s body, shared by the Typer command (vault_cmd.get) and the
fast path (fastpath.py). It must not import typer: the fast path exists so that
``vault get`` does not pay for Typer's start-up (tests/test_startup.py pins it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from zerotrust_admin.cli.context import AppContext
from zerotrust_admin.cli.output import emit_json, info
from zerotrust_admin.errors import UsageError


def run_get(app_ctx: AppContext, name: str, version: int | None, output_file: str | None, as_json: bool) -> None:
    from zerotrust_admin import fsutil

    if output_file:
        app_ctx.config.check_output(output_file)  # never over the tool's own files (F1/F3), before the read
    secret, meta = app_ctx.provider().get(name, version)  # the configured secret provider
    with secret:
        data = secret.reveal()
        if output_file:
            fsutil.write_private_file(Path(output_file), data)
            if as_json:
                emit_json({**meta.to_dict(), "output_file": output_file})
            else:
                info(f"Wrote {len(data)} bytes of {name} (version {meta.version}) to {output_file}", quiet=app_ctx.quiet)
            return
        if as_json:
            import base64

            record = meta.to_dict()
            try:
                record["value"] = data.decode("utf-8")
            except UnicodeDecodeError:
                record["value_base64"] = base64.b64encode(data).decode("ascii")
            emit_json(record)
            return
        if sys.stdout.isatty():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"secret {name!r} is binary ({len(data)} bytes); refusing to print it to a terminal",
                                 hint="use --output-file FILE, pipe the output, or --json for base64") from None
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

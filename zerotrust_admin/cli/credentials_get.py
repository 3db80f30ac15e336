"""The body of ``credentials get``, shared by the Typer command and the fast path
(no Typer import here: the AWS CLI runs ``--format process`` on every command)."""

from __future__ import annotations

import sys

from zerotrust_admin.errors import UsageError

FORMATS = ("env", "json", "process")


def run_get(app_ctx, role_arn: str, external_id: str | None, via: list[str], duration: int | None,
            fmt: str, no_cache: bool, as_json: bool) -> None:
    from zerotrust_admin.aws.service import get_credentials
    from zerotrust_admin.cli.output import warn

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    creds = get_credentials(app_ctx, role_arn, external_id=external_id, via=via, duration=duration, use_cache=not no_cache,
                            warn=None if app_ctx.quiet else warn)
    with creds:
        if fmt == "process":
            text = creds.process_json() + "\n"
        elif as_json or fmt == "json":
            text = creds.json_document() + "\n"
        else:
            text = creds.env_lines()
        sys.stdout.write(text)
        sys.stdout.flush()
        del text

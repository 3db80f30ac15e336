"""Where the operator's TOTP code comes from, for every command that needs
one (``vault get`` of a sensitive secret, ``mfa verify``). No Typer here: the
``vault get`` fast path uses it too.

Order: ``--otp-stdin`` (first line of stdin), ``$ZEROTRUST_OTP``, else a hidden
prompt on the controlling terminal (``/dev/tty``, even when stdin is a pipe). Asked only when a code is actually needed.
"""

from __future__ import annotations

import os
import sys


def code_source(otp_stdin: bool = False):
    def get() -> str | None:
        from zerotrust_admin.mfa import OTP_ENV

        if otp_stdin:
            return sys.stdin.readline().strip() or None
        if os.environ.get(OTP_ENV):
            return os.environ[OTP_ENV].strip()
        from zerotrust_admin.cli.terminal import ask_hidden, controlling_terminal

        if controlling_terminal():  # /dev/tty, as sudo asks: stdin may carry data
            return ask_hidden("MFA code: ").strip() or None
        return None

    return get

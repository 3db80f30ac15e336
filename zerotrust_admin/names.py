"""Secret names: letters, digits and ``._-/``, 1-256 chars, no empty or dot segments."""

from __future__ import annotations

import re

from zerotrust_admin.errors import UsageError

NAME_RULE = "letters, digits and . _ - /, 1-256 characters, no empty, '.' or '..' segments, no leading '/'"
_ALLOWED = re.compile(r"[A-Za-z0-9._/-]{1,256}")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _ALLOWED.fullmatch(name):
        raise UsageError(f"invalid secret name {_shown(name)}", hint=f"a name is {NAME_RULE}")
    segments = name.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise UsageError(f"invalid secret name {_shown(name)}", hint=f"a name is {NAME_RULE}")
    return name


def validate_prefix(prefix: str) -> str:
    """A list prefix may end in '/' (``app/``) but otherwise follows the name rule."""
    if prefix == "":
        return prefix
    validate_name(prefix.rstrip("/") or "x/")
    return prefix


def _shown(name: object) -> str:
    # A name can be anything the user typed; show it escaped and bounded.
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "...'"

"""Text that is safe on a terminal, in one TSV field and in a Markdown report
(threat model F2). No dependencies: the CLI renderers (``cli/output.py``) and
library renderers (``compliance/render_md.py``) share it.

The rule is Python's own ``str.isprintable``: every character it does not
count as printable is shown escaped, as text. That is C0 (tab and newline
included), DEL and C1 (CSI ``\\x9b``, NEL ``\\x85``), the Unicode line and
paragraph separators U+2028/U+2029, the bidi controls of Trojan Source
(U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C), every other format
character (zero-width space, BOM), spaces other than U+0020, surrogates (a
file name decoded with surrogateescape), private-use and unassigned code
points. ``\\t``, ``\\n`` and ``\\r`` keep their short names, other code points
below U+0100 are ``\\xNN``, the rest ``\\uNNNN`` or ``\\UNNNNNNNN``.
"""

from __future__ import annotations

_SHORT = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


class _Escapes(dict):
    """A ``str.translate`` table built on demand: one lookup per distinct character."""

    def __init__(self, *, backslash: bool, keep_newline: bool = False):
        super().__init__()
        if backslash:
            self[0x5C] = "\\\\"
        if keep_newline:
            self[0x0A] = "\n"

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char.isprintable():
            value = char
        elif code in _SHORT:
            value = _SHORT[code]
        elif code < 0x100:
            value = f"\\x{code:02x}"
        elif code < 0x10000:
            value = f"\\u{code:04x}"
        else:
            value = f"\\U{code:08x}"
        self[code] = value
        return value


_DATA = _Escapes(backslash=True)  # a value in a table or TSV field: an escaped "\x1b" stays distinguishable
_MESSAGE = _Escapes(backslash=False)  # one message line: a backslash (a Windows path) stays one
_DOCUMENT = _Escapes(backslash=False, keep_newline=True)  # a whole document: its own line breaks kept


def escape_text(value: object) -> str:
    """``value`` as one line of terminal- and TSV-safe text; a backslash is doubled."""
    text = "" if value is None else str(value)
    if text.isprintable() and "\\" not in text:
        return text  # the common case, no copy
    return text.translate(_DATA)


def escape_line(value: object) -> str:
    """``value`` as one line of a message: every non-printable character escaped, newlines included."""
    text = "" if value is None else str(value)
    return text if text.isprintable() else text.translate(_MESSAGE)


def escape_document(text: str) -> str:
    """A rendered document (Markdown): every non-printable character escaped except its own newlines."""
    return text if text.replace("\n", "").isprintable() else text.translate(_DOCUMENT)


def has_controls(value: str) -> bool:
    """True when ``value`` holds a character ``escape_line`` would escape."""
    return not value.isprintable()

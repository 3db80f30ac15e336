"""The plain YAML a configuration is written in, read without PyYAML.

Importing PyYAML costs every command about 15 ms (its reader and resolver
compile their regular expressions at import), more than the rest of
``vault get``'s work together (issue 14's start-up budget). A configuration is
block mappings, block lists, one-line scalars and one-line flow collections
(``[a, b]``, ``{k: v}``), so
this reader handles exactly that and nothing more:

- ``parse(text)`` returns what ``yaml.load(text, Loader=CSafeLoader)`` returns,
  value for value and type for type (YAML 1.1 resolution: ``yes`` is True,
  ``~`` is None, ``010`` is not 10);
- or ``UNSUPPORTED`` for anything else: anchors, aliases, tags, block scalars,
  multi-line or escaped strings, flow collections over several lines, non-ASCII text, tabs, a key
  written twice, numbers other than plain decimal integers and decimals (``0.5``), a top level that is
  not a mapping, and every error. The caller then goes PyYAML's way, which
  also gives the error messages and the F4 checks (config/loader.py).

So this reader never decides anything PyYAML would decide differently: it
either agrees or steps aside. tests/test_config_plainyaml.py holds it to that
on a corpus (every YAML block of the seed document and the docs) and on
thousands of generated documents.
"""

from __future__ import annotations

import re

__all__ = ["UNSUPPORTED", "parse"]

UNSUPPORTED = object()
MAX_DEPTH = 32  # config/loader.py's MAX_CONFIG_DEPTH: deeper goes to PyYAML, which refuses it
MAX_KEY_CHARS = 256  # libyaml refuses a key of over 1024 characters; no config key comes near either


class _Unsupported(Exception):
    pass


# ``key:`` or ``key: value``; a key may hold ':' not followed by a space (ARNs)
_KEY_ENTRY = re.compile(r"([A-Za-z0-9_](?:[A-Za-z0-9_./-]|:(?=[A-Za-z0-9_./-]))*):(?: +(.*))?")
_PRINTABLE = re.compile(r"[\x20-\x7e\n]*")
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})")
_DECIMAL_FLOAT = re.compile(r"[-+]?[0-9]{1,18}\.[0-9]{1,18}")  # PyYAML: float(text), as here
# Every other implicit type of PyYAML's SafeLoader (YAML 1.1: ints in other
# bases or with '_' or ':', floats, timestamps, merge and value keys): a plain
# scalar matching one of these is left to PyYAML. Compiled at first use (a
# scalar starting with a digit, a sign, '.', '<' or '='): 1-2 ms otherwise
# spent by every command.
_OTHER_IMPLICIT_PATTERN = (
    r"""[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)? | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
    | [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    | [0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
    | << | ="""
)
_other_implicit: list = []
# In a flow collection a ':' inside a plain scalar is text only when a plain
# character follows it (``arn:aws:iam::1:role/x``); anything else is PyYAML's call.
_FLOW_COLON = re.compile(r":(?![A-Za-z0-9_./:-])")
_TRUE = frozenset("yes Yes YES true True TRUE on On ON".split())
_FALSE = frozenset("no No NO false False FALSE off Off OFF".split())
_NULL = frozenset(("~", "null", "Null", "NULL", ""))
# A plain scalar may not start with these (quotes and '[' are handled before).
_INDICATORS = frozenset("?:,[]{}#&*!|>'\"%@`")
_DOUBLE_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/"}


def parse(text: str):
    """The document's value (None for an empty one), or UNSUPPORTED."""
    try:
        lines = _lines(text)
        if not lines:
            return None
        if lines[0][0] != 0 or _is_item(lines[0][1]):
            raise _Unsupported
        value, pos = _mapping(lines, 0, 0, 1)
        if pos != len(lines):
            raise _Unsupported
        return value
    except _Unsupported:
        return UNSUPPORTED


def _lines(text: str) -> list[tuple[int, str]]:
    if not _PRINTABLE.fullmatch(text):
        raise _Unsupported  # tabs, CR, control characters, non-ASCII: PyYAML's call
    out = []
    for raw in text.split("\n"):
        stripped = raw.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        if raw.startswith(("---", "...", "%")):
            raise _Unsupported  # document markers and directives
        out.append((len(raw) - len(stripped), stripped.rstrip(" ")))
    return out


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _mapping(lines, pos: int, indent: int, depth: int, first: str | None = None):
    """A block mapping at ``indent``; ``first`` is an entry already read (the
    one that shares its line with a list item's dash)."""
    if depth > MAX_DEPTH:
        raise _Unsupported
    result: dict = {}
    while first is not None or pos < len(lines):
        if first is not None:
            content, first = first, None
        else:
            ind, content = lines[pos]
            if ind < indent:
                break
            if ind > indent:
                raise _Unsupported
            pos += 1
        entry = _KEY_ENTRY.fullmatch(content)
        if entry is None or len(entry[1]) > MAX_KEY_CHARS:
            raise _Unsupported
        key = _resolve(entry[1])
        if not isinstance(key, str) or key in result:
            raise _Unsupported  # a non-string key, or a key twice (PyYAML's path names it)
        text = entry[2] or ""
        if not text or text.startswith("#"):
            if pos < len(lines) and lines[pos][0] > indent:
                value, pos = _node(lines, pos, lines[pos][0], depth + 1)
            elif pos < len(lines) and lines[pos][0] == indent and _is_item(lines[pos][1]):
                value, pos = _sequence(lines, pos, indent, depth + 1)  # a list written at its key's indent
            else:
                value = None
        else:
            text, pos = _joined_flow(lines, pos, indent, text)
            value = _inline(text, depth + 1)
            if pos < len(lines) and lines[pos][0] > indent:
                raise _Unsupported  # a continued scalar or a stray indent
        result[key] = value
    return result, pos


def _node(lines, pos: int, indent: int, depth: int):
    if _is_item(lines[pos][1]):
        return _sequence(lines, pos, indent, depth)
    return _mapping(lines, pos, indent, depth)


def _sequence(lines, pos: int, indent: int, depth: int):
    if depth > MAX_DEPTH:
        raise _Unsupported
    items: list = []
    while pos < len(lines):
        ind, content = lines[pos]
        if ind < indent or (ind == indent and not _is_item(content)):
            break
        if ind > indent:
            raise _Unsupported
        pos += 1
        rest = content[1:]
        inner = rest.lstrip(" ")
        if not inner or inner.startswith("#"):
            if pos < len(lines) and lines[pos][0] > indent:
                value, pos = _node(lines, pos, lines[pos][0], depth + 1)
            else:
                value = None
        elif _is_item(inner):
            raise _Unsupported  # "- - x"
        elif _KEY_ENTRY.fullmatch(inner):
            inner_indent = indent + 1 + len(rest) - len(inner)
            value, pos = _mapping(lines, pos, inner_indent, depth + 1, first=inner)
        else:
            inner, pos = _joined_flow(lines, pos, indent, inner)
            value = _inline(inner, depth + 1)
            if pos < len(lines) and lines[pos][0] > indent:
                raise _Unsupported
        items.append(value)
    return items, pos


def _joined_flow(lines, pos: int, indent: int, text: str) -> tuple[str, int]:
    """A flow collection written over several lines, as one line. Lines are
    joined only where the break falls between two tokens (after '[', '{' or
    ','), where YAML reads it as a space; any other break is PyYAML's call.
    Each line is scanned once (a 1 MiB list stays linear)."""
    if text[0] not in "[{":
        return text, pos
    depth = _open_brackets(text, 0, "")
    parts = [text]
    while depth > 0:
        last = parts[-1][-1]
        if pos >= len(lines) or lines[pos][0] <= indent or last not in "[{,":
            raise _Unsupported
        fragment = lines[pos][1]
        depth = _open_brackets(fragment, depth, last)
        parts.append(fragment)
        pos += 1
    return " ".join(parts), pos


def _open_brackets(text: str, depth: int, prev: str) -> int:
    """How many '[' / '{' are open at the end of ``text``, given ``depth``
    open before it and ``prev``, the last character before it; quotes are
    skipped, and a comment inside the collection or an open quote makes it
    PyYAML's call."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            if prev not in ("[", "{", ",", ":"):
                raise _Unsupported  # a quote inside a plain word (o'brien) opens nothing
            _, i = _quoted(text, i)
            prev = ch
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "#":
            if depth > 0:
                raise _Unsupported
            break  # a comment after the closed collection (_after checks it)
        if ch != " ":
            prev = ch
        i += 1
    return depth


def _after(rest: str) -> None:
    """What may follow a closed quote or bracket on its line: a comment."""
    if rest and not (rest.startswith(" ") and (rest.strip() == "" or rest.lstrip().startswith("#"))):
        raise _Unsupported


def _inline(text: str, depth: int):
    """A value written on its key's (or dash's) line."""
    if text[0] in "\"'":
        value, end = _quoted(text, 0)
        _after(text[end:])
        return value
    if text[0] in "[{":
        return _flow(text, depth)
    cut = text.find(" #")
    if cut >= 0:
        text = text[:cut].rstrip(" ")
    return _plain(text)


def _plain(text: str, flow: bool = False):
    if not text or text[0] in _INDICATORS or (text[0] == "-" and (len(text) == 1 or text[1] == " ")):
        raise _Unsupported
    if ": " in text or text.endswith(":") or (flow and (_FLOW_COLON.search(text) or any(c in text for c in "#[]{},"))):
        raise _Unsupported
    return _resolve(text)


def _resolve(text: str):
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if _DECIMAL.fullmatch(text):
        return int(text)
    if _DECIMAL_FLOAT.fullmatch(text):
        return float(text)
    if text[0] in "0123456789+-.<=":
        if not _other_implicit:
            _other_implicit.append(re.compile(_OTHER_IMPLICIT_PATTERN, re.X))
        if _other_implicit[0].fullmatch(text):
            raise _Unsupported
    return text


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The quoted scalar opening at ``start`` and the index after its closing
    quote; it must close on the same line."""
    quote = text[start]
    out = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            if quote == "'" and text.startswith("''", i):
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if ch == "\\" and quote == '"':
            escaped = _DOUBLE_ESCAPES.get(text[i + 1 : i + 2])
            if escaped is None:
                raise _Unsupported
            out.append(escaped)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise _Unsupported  # continues on the next line


def _flow(text: str, depth: int):
    """A flow collection (``[a, "b"]``, ``{k: v, l: [x]}``) closing on its line."""
    value, end = _flow_node(text, 0, depth)
    _after(text[end:])
    return value


def _skip_spaces(text: str, i: int) -> int:
    while text.startswith(" ", i):
        i += 1
    return i


def _flow_node(text: str, i: int, depth: int):
    """The flow node at ``i`` and the index after it."""
    if depth > MAX_DEPTH:
        raise _Unsupported
    if i >= len(text):
        raise _Unsupported
    ch = text[i]
    if ch in "\"'":
        return _quoted(text, i)
    if ch not in "[{":
        j = i
        while j < len(text) and text[j] not in ",]}":
            j += 1
        return _plain(text[i:j].rstrip(" "), flow=True), j
    closing = "]" if ch == "[" else "}"
    items: list = []
    entries: dict = {}
    i = _skip_spaces(text, i + 1)
    if text.startswith(closing, i):
        return (items if ch == "[" else entries), i + 1
    while True:
        if ch == "[":
            value, i = _flow_node(text, i, depth + 1)
            items.append(value)
        else:
            j = text.find(": ", i)
            if j < 0:
                raise _Unsupported
            if text[j - 1 : j] == " ":
                raise _Unsupported  # "key : value"
            if j - i > MAX_KEY_CHARS:
                raise _Unsupported
            key = _plain(text[i:j], flow=True)
            if not isinstance(key, str) or key in entries:
                raise _Unsupported
            value, i = _flow_node(text, _skip_spaces(text, j + 2), depth + 1)
            entries[key] = value
        i = _skip_spaces(text, i)
        if text.startswith(",", i):
            i = _skip_spaces(text, i + 1)
            if text.startswith(closing, i):
                raise _Unsupported  # a trailing comma: PyYAML's call
            continue
        if text.startswith(closing, i):
            return (items if ch == "[" else entries), i + 1
        raise _Unsupported

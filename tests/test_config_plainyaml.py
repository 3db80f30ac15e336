"""config/plainyaml.py agrees with PyYAML or steps aside, never anything else.

The property under test: for every text, ``plainyaml.parse(text)`` is either
UNSUPPORTED or exactly (types included: True is not 1) what
``yaml.load(text, CSafeLoader)`` returns; when PyYAML refuses a text, the
reader must have stepped aside too. Checked on every YAML block of the seed
document and the docs, on hand-picked YAML 1.1 traps, and on generated
documents; and the real configurations must take the fast path (a reader that
always stepped aside would pass the rest).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml

from zerotrust_admin.config import plainyaml
from zerotrust_admin.config.example import EXAMPLE_CONFIG
from zerotrust_admin.config.loader import parse_yaml
from zerotrust_admin.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def typed(value):
    """The value with every scalar's type spelled out (True == 1 in Python)."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, value)


def pyyaml(text: str):
    try:
        return ("ok", yaml.load(text, Loader=LOADER))  # nosec B506 - a safe loader
    except (yaml.YAMLError, ValueError, OverflowError):
        return ("error", None)


def agrees(text: str) -> bool:
    """Asserts the property; True when the fast reader answered."""
    fast = plainyaml.parse(text)
    if fast is plainyaml.UNSUPPORTED:
        return False
    outcome, expected = pyyaml(text)
    assert outcome == "ok", f"PyYAML refuses what plainyaml accepted: {text!r} -> {fast!r}"
    assert typed(fast) == typed(expected), f"{text!r}: plainyaml {fast!r} != PyYAML {expected!r}"
    return True


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```ya?ml\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


DOC_BLOCKS = [
    (f"{path.name}#{i}", block)
    for path in [ROOT / "tests" / "data" / "seed-secrets-management.md", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for i, block in enumerate(yaml_blocks(path))
]


@pytest.mark.parametrize("where,text", DOC_BLOCKS, ids=[w for w, _ in DOC_BLOCKS])
def test_every_documented_block(where, text):
    agrees(text)


def test_the_documented_configurations_take_the_fast_path():
    """The seed's blocks, the docs' and the example ``init`` writes are read
    without PyYAML (else the start-up gain is not real)."""
    answered = [where for where, text in DOC_BLOCKS if agrees(text)]
    assert len(DOC_BLOCKS) >= 30
    assert len(answered) >= 0.75 * len(DOC_BLOCKS), sorted(set(w for w, _ in DOC_BLOCKS) - set(answered))
    seed = [w for w, _ in DOC_BLOCKS if w.startswith("seed-")]
    assert seed and all(w in answered for w in seed)
    assert agrees(EXAMPLE_CONFIG)


TRAPS = [
    # YAML 1.1 scalars: the reader must resolve these exactly or step aside
    "a: yes", "a: No", "a: ON", "a: off", "a: y", "a: n", "a: TRUE", "a: True", "a: tRUE",
    "a: ~", "a: null", "a: NULL", "a: Null", "a: nULL", "a:", "a: ''", 'a: ""',
    "a: 0", "a: -0", "a: +12", "a: 012", "a: 0o12", "a: 0x1F", "a: 0b101", "a: 1_000", "a: 1:30", "a: 190:20:30",
    "a: 1.5", "a: 1.", "a: .5", "a: 1e3", "a: 1.0e+3", "a: .inf", "a: -.Inf", "a: .NaN", "a: 6.8523015e+5",
    "a: 2026-01-01", "a: 2026-1-1 10:00:00", "a: 2026-01-01T10:00:00Z", "a: 2026-13-45",
    "a: 90d", "a: 24h", "a: 10.0.0.1", "a: 1.2.3", "a: 123456789012345678", "a: 1234567890123456789",
    "a: " + "9" * 70, "a: <<", "a: =", "<<: {}",
    # strings and comments
    "a: b #c", "a: b#c", "a: 'b #c'", 'a: "b #c"', "a: 'it''s'", 'a: "q\\"q"', 'a: "\\n"', 'a: "\\x41"', 'a: "\\u00e9"',
    "a: 'x' y", 'a: "x"y', "a: 'x' #c", "a: he said \"x\"", "a: x,y", "a: x[1]", "a: http://h:80/p?q#f", "a: a  b",
    "a: b: c", "a: b:", "a: :b", "a: ?b", "a: -b", "a: - b", "a: -", "a: &x b", "a: *x", "a: !!str 1", "a: |\n  x",
    "a: >\n  x", "a: %x", "a: @x", "a: `x", "a: 'unterminated", 'a: "unterminated', "a: 'multi\n  line'",
    "a: plain\n  continued", "a: é", "a:\tb", "a: b\r\n", "\ufeffa: b",
    # keys
    "1: a", "yes: a", "on: a", "null: a", "~: a", "1.5: a", "'a': b", '"a": b', "a b: c", "a-b.c_d: e", "a:b", "a : b",
    "a: 1\na: 2", "a:\n  b: 1\n  b: 2", "? a\n: b",
    # lists and nesting
    "a: []", "a: {}", "a: [1, two, 'three', \"four\"]", "a: [1,2]", "a: [ ]", "a: [a, ]", "a: [a b]", "a: [[1]]",
    "a: [a: 1]", "a: [x #y]", "a: [1, 2] #c", "a: [1, 2]x", "a: {b: 1}", "a: [yes, ~, 0x1]",
    "a:\n  - 1\n  - two\n", "a:\n- 1\n- 2\nb: 3", "a:\n  - b: 1\n    c: 2\n  - d: 3", "a:\n  -\n    b: 1",
    "a:\n  - - 1", "a:\n  - b: 1\n   c: 2", "a:\n  - b: 1\n     c: 2", "a:\n    b: 1\n  c: 2", "a:\n  b:\n    c:\n      d: [x]",
    "a:\n  - b:\n      - c\n      - d\n    e: f", "a:\n  -  b: 1\n     c: 2", "a:\n  - # c\n    b: 1", "a: # c\n  b: 1",
    # documents
    # found by review: a quote inside a plain word made a comment look like flow content; libyaml's key limit
    "sinks: [file, o'brien] # o'k,\n  syslog]\nb: 2\n", "a: [x'y] #',\n  b]\n", 'a: [x"y] #",\n  z]', "a:\n- [x'y] #',\n  z]\n",
    "k" * 1025 + ": 1\n", "a: {" + "k" * 1025 + ": 1}", "a:\n- " + "k" * 1100 + ": 1",
    "", "# only a comment\n", "---\na: 1", "a: 1\n...", "%YAML 1.1\n---\na: 1", "- a\n- b", "just text", "  a: 1",
    "a: 1\n b: 2", "a: 1\n\n\nb: 2\n", "a: 1   \nb: 2  # c\n",
]


@pytest.mark.parametrize("text", TRAPS)
def test_yaml_traps(text):
    agrees(text)


def test_traps_exercise_both_paths():
    answered = [t for t in TRAPS if agrees(t)]
    assert 40 <= len(answered) <= len(TRAPS) - 60, len(answered)


KEYS = ["a", "b", "c_d", "e-f", "g.h", "x1", "tls", "region", "arn:aws:iam::1:role/r", "1", "yes", "on", "null"]
SAFE = ["v", "yes", "No", "~", "", "0", "-3", "1.5", "90d", "10.0.0.1", "'q''q'", '"d\\"q"', "a b", "a #c", "a#c", "-x",
        "[1, two]", "[]", "{}", "{a: 1, b: [x, 'y']}", "http://h:1/p", "[arn:aws:iam::1:role/x]", "Off", "NULL"]
SCALARS = [
    "v", "yes", "No", "off", "~", "null", "", "0", "-0", "+7", "007", "0x1F", "1_0", "3:20", "1.5", ".5", "1e3", ".inf",
    "2026-01-01", "90d", "10.0.0.1", "'q''q'", '"d\\"q"', '"\\t"', '"\\a"', "a b", "a #c", "a#c", "a: b", "a:", "-x", "-",
    "[1, 2]", "[a,b]", "[]", "{}", "{a: 1}", "[a, ]", "&x", "*x", "!t x", "|", "[x: 1]", "'unterminated", "http://h:1/p",
]


def scalar(rng: random.Random) -> str:
    return rng.choice(SAFE if rng.random() < 0.7 else SCALARS)


def generated(rng: random.Random, depth: int = 0, indent: int = 0) -> list[str]:
    """A random document of block mappings and lists, mostly well-formed,
    sometimes with a wrong indent, a duplicate key or a stray character."""
    lines: list[str] = []
    pad = " " * indent
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(KEYS[:9] if rng.random() < 0.9 else KEYS)
        roll = rng.random()
        if depth < 3 and roll < 0.3:
            lines.append(f"{pad}{key}:" + rng.choice(["", "", " # c"]))
            lines += generated(rng, depth + 1, indent + rng.choice([2, 2, 2, 4, 1]))
        elif depth < 3 and roll < 0.5:
            lines.append(f"{pad}{key}:")
            item_indent = indent + rng.choice([0, 2, 2, 4])
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.3:
                    sub = generated(rng, depth + 1, item_indent + 2)
                    sub[0] = " " * item_indent + "- " + sub[0].lstrip(" ")
                    lines += sub
                else:
                    lines.append(" " * item_indent + "- " + scalar(rng))
        else:
            lines.append(f"{pad}{key}: {scalar(rng)}" + rng.choice(["", "", " # c", "  "]))
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "# comment", pad + "  stray", "\t", pad + "---"]))
    return lines


def test_generated_documents():
    rng = random.Random(20261207)
    answered = 0
    for _ in range(8000):
        answered += agrees("\n".join(generated(rng)) + rng.choice(["", "\n"]))
    assert answered >= 1500  # the generator reaches the fast path, not only the fallback


def test_loader_gives_the_same_errors_either_way(tmp_path):
    """The fast reader steps aside on every error, so the messages are PyYAML's path's."""
    with pytest.raises(ConfigError, match="twice"):
        parse_yaml("a: 1\na: 2\n", "config file x")
    with pytest.raises(ConfigError, match="alias"):
        parse_yaml("a: &x 1\nb: *x\n", "config file x")
    with pytest.raises(ConfigError, match="mapping of sections"):
        parse_yaml("- a\n", "config file x")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_yaml("a: b: c\n", "config file x")
    with pytest.raises(ConfigError, match="integer of 70"):
        parse_yaml("a: " + "9" * 70 + "\n", "config file x")
    assert parse_yaml("# nothing\n", "config file x") == {}
    assert parse_yaml("tls:\n  certificate: /c.pem\n", "x") == {"tls": {"cert_file": "/c.pem"}}


def test_mutated_documentation_blocks():
    """Each documented block with characters inserted, deleted or swapped:
    the edits a hurried operator makes."""
    rng = random.Random(7)
    alphabet = " :-#'\"[]{},\n.0aZ~!&*|>\\/"
    for _ in range(4000):
        _, text = rng.choice(DOC_BLOCKS)
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            roll = rng.random()
            if roll < 0.4:
                chars.insert(at, rng.choice(alphabet))
            elif roll < 0.8 and chars:
                del chars[min(at, len(chars) - 1)]
            elif chars:
                chars[min(at, len(chars) - 1)] = rng.choice(alphabet)
        agrees("".join(chars))

"""docs/threat-model.md and tests/security/ must agree row by row: every row ID
in the table has a test named test_<id>_..., and every such test names a row
that exists. The doc is the design; this keeps the tests honest to it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\|\s*\*\*([A-Z]\d+)\*\*\s*\|", re.M)
TEST = re.compile(r"^test_([a-z]\d+)_")


def doc_rows() -> set[str]:
    return {m.group(1).lower() for m in ROW.finditer((ROOT / "docs" / "threat-model.md").read_text())}


def collect_row_tests() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests" / "security").glob("test_tm_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (m := TEST.match(node.name)):
                found.setdefault(m.group(1), []).append(f"{path.name}::{node.name}")
    return found


def test_every_row_has_a_test():
    rows, tests = doc_rows(), collect_row_tests()
    assert len(rows) >= 30, "the threat model table lost its rows"
    missing = sorted(rows - set(tests))
    assert not missing, f"threat-model rows without a test: {missing}"


def test_every_test_names_a_row():
    rows, tests = doc_rows(), collect_row_tests()
    stray = {k: v for k, v in tests.items() if k not in rows}
    assert not stray, f"tests naming rows that docs/threat-model.md does not have: {stray}"

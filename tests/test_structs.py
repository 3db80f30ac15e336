"""zerotrust_admin.structs behaves as ``dataclasses`` does, for what it offers.

Each case defines the same class twice, once with ``@dataclass`` and once with
``@struct``, and compares what a caller can observe: construction, defaults,
factories (a fresh object per instance), repr (hidden fields stay hidden: the
records hold key material), equality, hashing, frozenness and ``asdict``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import ClassVar

import pytest

from conftest import ROOT
from zerotrust_admin import structs


def both(body: str, **options):
    """The class defined by ``body`` under each decorator."""
    made = []
    for decorator, field_fn in ((dataclasses.dataclass, dataclasses.field), (structs.struct, structs.field)):
        namespace = {"field": field_fn}
        exec(f"class C:\n{body}", namespace)  # nosec B102 - test fixtures written here
        made.append(decorator(**options)(namespace["C"]) if options else decorator(namespace["C"]))
    return made


BODY = (
    "    name: str\n"
    "    count: int = 3\n"
    "    tags: list = field(default_factory=list)\n"
    "    key: bytes = field(default=b'k', repr=False, compare=False)\n"
)


@pytest.mark.parametrize("frozen", [False, True])
def test_same_observable_behaviour(frozen):
    dc, st = both(BODY, frozen=frozen)
    for args, kwargs in [(("a",), {}), (("a", 5), {}), ((), {"name": "b", "tags": [1], "key": b"x"})]:
        d, s = dc(*args, **kwargs), st(*args, **kwargs)
        assert repr(d) == repr(s)
        assert "key=" not in repr(s)
        assert (d.name, d.count, d.tags, d.key) == (s.name, s.count, s.tags, s.key)
        assert dataclasses.asdict(d) == structs.asdict(s)
    assert st("a") == st("a") and st("a") != st("b") and st("a", key=b"1") == st("a", key=b"2")
    assert st("a").__eq__(dc("a")) is NotImplemented
    for cls in (dc, st):
        assert cls("a", float("nan")) != cls("a", float("nan"))
    same_d, same_s = dc("a", float("nan")), st("a", float("nan"))
    assert same_d == same_d and same_s == same_s  # an element is equal to itself, as in tuples
    assert st("a").tags is not st("a").tags  # a fresh list per instance
    assert st.count == dc.count == 3 and not hasattr(st, "tags") and not hasattr(dc, "tags")
    for cls in (dc, st):
        with pytest.raises(TypeError):
            cls()  # a field without default is required
        with pytest.raises(TypeError):
            cls("a", nope=1)
    if frozen:
        assert hash(st("a", tags=())) == hash(st("a", tags=(), key=b"other"))
        for obj in (dc("a"), st("a")):
            with pytest.raises(AttributeError) as raised:
                obj.name = "z"
            assert type(raised.value).__name__ == "FrozenInstanceError"
            with pytest.raises(AttributeError):
                del obj.count
    else:
        for cls in (dc, st):
            assert cls.__hash__ is None
            obj = cls("a")
            obj.count = 9
            assert obj.count == 9


def test_definition_errors_match():
    for body in ("    a: int = 1\n    b: int\n", "    a: list = []\n"):
        errors = []
        for decorator in (dataclasses.dataclass, structs.struct):
            namespace: dict = {}
            exec(f"class C:\n{body}", namespace)  # nosec B102
            with pytest.raises((TypeError, ValueError)) as raised:
                decorator(namespace["C"])
            errors.append(type(raised.value))
        assert errors[0] is errors[1]


def test_own_methods_and_classvars_are_kept():
    @structs.struct
    class C:
        x: int
        limit: ClassVar[int] = 5

        def __repr__(self) -> str:
            return "custom"

    assert repr(C(1)) == "custom" and C.limit == 5 and structs.asdict(C(1)) == {"x": 1}
    with pytest.raises(TypeError):
        C(1, 2)


def test_asdict_recurses():
    @structs.struct
    class Inner:
        v: int

    @structs.struct
    class Outer:
        inner: Inner
        items: list
        table: dict

    out = structs.asdict(Outer(Inner(1), [Inner(2), 3], {"k": Inner(4)}))
    assert out == {"inner": {"v": 1}, "items": [{"v": 2}, 3], "table": {"k": {"v": 4}}}
    with pytest.raises(TypeError):
        structs.asdict(object())


def test_start_path_imports_neither_dataclasses_nor_yaml(tmp_path):
    """The point of the module: importing what ``vault get`` imports pulls in
    neither ``dataclasses`` (nor ``inspect``) nor PyYAML."""
    code = (
        "import sys\n"
        "import zerotrust_admin.cli.entry, zerotrust_admin.cli.vault_get, zerotrust_admin.cli.context\n"
        "import zerotrust_admin.providers, zerotrust_admin.identity, zerotrust_admin.audit.sinks\n"
        "from zerotrust_admin.config.loader import parse_yaml\n"
        "parse_yaml('secrets:\\n  provider: local\\naudit:\\n  sinks: [file]\\n', 'x')\n"
        "print(' '.join(m for m in ('dataclasses', 'inspect', 'yaml', 'ctypes.util', 'secrets') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""

"""Record classes for the modules every command imports.

``dataclasses`` costs each command about 20 ms before it does any work: its
import pulls in ``inspect`` (and ``ast``, ``dis``, ``tokenize``), and each
decorated class compiles five or six generated methods one ``exec`` at a time
and, without a docstring, computes a signature. The twenty classes on the
``vault get`` path made that a fifth of the command's start (issue 14's
start-up budget, benchmarks/RESULTS.md "startup").

``struct`` is the subset of ``@dataclass`` those modules use, with the same
behaviour: fields from the class annotations in order, ``field(default=...,
default_factory=..., repr=False, compare=False)``, ``frozen=True`` (assignment
raises ``FrozenInstanceError``, an ``AttributeError``; the instance hashes
like a frozen dataclass), ``__eq__`` over the compared fields of the same
class, ``__repr__`` over the shown fields, and ``asdict``. ``__init__`` is
generated as ``dataclasses`` writes it, but only when the class is first
instantiated (most of a module's classes are not, in a given command); the
other methods are closures over the field names. tests/test_structs.py holds it to
``dataclasses`` behaviour by behaviour. Modules off the start path keep using
``dataclasses``.
"""

from __future__ import annotations

__all__ = ["FrozenInstanceError", "MISSING", "asdict", "field", "struct"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen struct (as ``dataclasses`` raises)."""


class Field:
    __slots__ = ("name", "default", "default_factory", "repr", "compare")

    def __init__(self, default=MISSING, default_factory=MISSING, repr: bool = True, compare: bool = True):
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"


def field(*, default=MISSING, default_factory=MISSING, repr: bool = True, compare: bool = True) -> Field:
    return Field(default, default_factory, repr, compare)


_FIELDS = "__struct_fields__"
_MUTABLE_DEFAULTS = (list, dict, set)


def _is_classvar(annotation) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__qualname__", "")
    return text.startswith(("ClassVar", "typing.ClassVar"))


def struct(cls=None, /, *, frozen: bool = False):
    """``@struct`` or ``@struct(frozen=True)``: see the module docstring."""

    def wrap(cls):
        return _build(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _build(cls, frozen: bool):
    if any(hasattr(base, _FIELDS) for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: struct classes do not inherit fields (use dataclasses)")
    specs: list[Field] = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        if isinstance(spec.default, _MUTABLE_DEFAULTS):
            raise ValueError(f"mutable default {type(spec.default)} for field {name} is not allowed: use default_factory")
        spec.name = name
        if spec.default is MISSING and value is not MISSING:
            delattr(cls, name)  # a field() with a factory leaves no class attribute
        elif spec.default is not MISSING:
            setattr(cls, name, spec.default)
        specs.append(spec)
    seen_default = False
    for spec in specs:
        has_default = spec.default is not MISSING or spec.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        seen_default = seen_default or has_default

    shown = tuple(s.name for s in specs if s.repr)
    compared = tuple(s.name for s in specs if s.compare)

    def __init__(self, *args, **kwargs):
        # Compiled at the first instance: most classes of a module are never
        # instantiated in a given command, and the compile is the cost.
        cls.__init__ = _compile_init(cls, specs, frozen)
        cls.__init__(self, *args, **kwargs)

    def __repr__(self):
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        # tuples, as dataclasses compares: an element is equal to itself (NaN)
        return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)

    def __hash__(self):
        return hash(tuple(getattr(self, n) for n in compared))

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    methods = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__}
    if frozen:
        methods.update(__hash__=__hash__, __setattr__=__setattr__, __delattr__=__delattr__)
    for method, function in methods.items():
        if method in cls.__dict__:
            if method in ("__setattr__", "__delattr__"):
                raise TypeError(f"cannot overwrite attribute {method} in class {cls.__name__}")
            continue  # a method the class writes itself wins, as with dataclasses
        function.__qualname__ = f"{cls.__qualname__}.{method}"
        setattr(cls, method, function)
    if not frozen and "__hash__" not in cls.__dict__:
        cls.__hash__ = None  # eq without frozen: unhashable, as with dataclasses
    setattr(cls, _FIELDS, tuple(specs))
    return cls


def _compile_init(cls, specs: list[Field], frozen: bool):
    """``__init__`` as ``dataclasses`` writes it: one statement per field."""
    namespace: dict = {"MISSING": MISSING}
    params, body = [], []
    for spec in specs:
        if spec.default_factory is not MISSING:
            namespace[f"_factory_{spec.name}"] = spec.default_factory
            params.append(f"{spec.name}=MISSING")
            value = f"_factory_{spec.name}() if {spec.name} is MISSING else {spec.name}"
        elif spec.default is not MISSING:
            namespace[f"_default_{spec.name}"] = spec.default
            params.append(f"{spec.name}=_default_{spec.name}")
            value = spec.name
        else:
            params.append(spec.name)
            value = spec.name
        body.append(f"    __setattr(self, {spec.name!r}, {value})" if frozen else f"    self.{spec.name} = {value}")
    if "__post_init__" in cls.__dict__:
        body.append("    self.__post_init__()")
    source = "\n".join([
        f"def __init__(self{''.join(', ' + p for p in params)}):",
        "    __setattr = object.__setattr__" if frozen else "    pass",
        *body,
    ])
    exec(source, namespace)  # nosec B102 - source built from the class's own field names
    function = namespace["__init__"]
    function.__qualname__ = f"{cls.__qualname__}.__init__"
    return function


def asdict(obj) -> dict:
    """Fields as a dict, recursing into structs, lists, tuples and dicts as
    ``dataclasses.asdict`` does (other values are returned as they are: the
    records hold strings, numbers and None, nothing to deep-copy)."""
    if not hasattr(type(obj), _FIELDS):
        raise TypeError("asdict() should be called on struct instances")
    return {spec.name: _plain(getattr(obj, spec.name)) for spec in getattr(obj, _FIELDS)}


def _plain(value):
    if hasattr(type(value), _FIELDS):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    return value

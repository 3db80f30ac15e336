"""The result of a policy evaluation (a plain class: cheap to import on the
``vault get`` fast path)."""

from __future__ import annotations


class Decision:
    __slots__ = ("allowed", "rule_index", "reason")

    def __init__(self, allowed: bool, rule_index: int | None, reason: str):
        self.allowed = allowed
        self.rule_index = rule_index
        self.reason = reason

    def to_dict(self) -> dict:
        return {"allowed": self.allowed, "rule_index": self.rule_index, "reason": self.reason}

    def __eq__(self, other) -> bool:
        return isinstance(other, Decision) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Decision(allowed={self.allowed}, rule_index={self.rule_index}, reason={self.reason!r})"

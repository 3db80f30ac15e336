"""Master key from ZEROTRUST_ENCRYPTION_KEY (base64, 32 bytes), e.g. injected by an orchestrator."""

from __future__ import annotations

from zerotrust_admin.keys.base import KeySourceContext
from zerotrust_admin.keys.raw import RawKeySource, decode_key_text


class EnvKeySource(RawKeySource):
    kind = "env"

    @classmethod
    def _from_config(cls, ctx: KeySourceContext, key_id: str) -> "EnvKeySource":
        value = ctx.config.get("encryption", {}).get("key") or ""
        key = decode_key_text(value.encode() if isinstance(value, str) else value, "ZEROTRUST_ENCRYPTION_KEY")
        return cls(key, key_id, "ZEROTRUST_ENCRYPTION_KEY")

    @classmethod
    def create(cls, ctx: KeySourceContext, key_id: str) -> tuple["EnvKeySource", dict]:
        return cls._from_config(ctx, key_id), {}

    @classmethod
    def open(cls, ctx: KeySourceContext, params: dict) -> "EnvKeySource":
        return cls._from_config(ctx, params.get("key_id", ""))

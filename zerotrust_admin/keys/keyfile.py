"""Master key in a file (the default): base64 of 32 random bytes, mode 0600 enforced."""

from __future__ import annotations

import base64
from pathlib import Path

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import random_key
from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.keys.base import KeySourceContext
from zerotrust_admin.keys.raw import RawKeySource, decode_key_text
from zerotrust_admin.secret import Secret


def key_file_path(ctx: KeySourceContext) -> Path:
    configured = ctx.config.get("encryption", {}).get("key_file")
    return Path(configured).expanduser() if configured else ctx.home / "master.key"


class KeyFileSource(RawKeySource):
    kind = "keyfile"

    @classmethod
    def create(cls, ctx: KeySourceContext, key_id: str) -> tuple["KeyFileSource", dict]:
        path = key_file_path(ctx)
        fsutil.ensure_private_dir(path.parent)
        key = random_key()
        fsutil.write_private_file(path, base64.b64encode(key) + b"\n", overwrite=False)
        return cls(Secret(key), key_id, str(path)), {}

    @classmethod
    def open(cls, ctx: KeySourceContext, params: dict) -> "KeyFileSource":
        path = key_file_path(ctx)
        try:
            data = fsutil.read_private_file(path, what="master key file")
        except NotFoundError:
            raise NotFoundError(
                f"master key file {path} does not exist",
                hint="restore it from your key backup, set encryption.key_file, or export ZEROTRUST_ENCRYPTION_KEY",
            ) from None
        return cls(decode_key_text(data, f"master key file {path}"), params.get("key_id", ""), str(path))

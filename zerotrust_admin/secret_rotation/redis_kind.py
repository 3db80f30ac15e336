"""``redis``: the password of a Redis 6+ ACL user, with zero downtime.

target:
  url: redis://127.0.0.1:6379/0      # rediss:// for TLS (ca_file: ...); no password in the URL
  user: app                          # the ACL user whose password is rotated (must exist)
  admin_secret: redis/admin          # vault secret: the password of admin_user
  admin_user: default                # an ACL user allowed to run ACL SETUSER/GETUSER (default: default)
  length: 32                         # characters of the new password (letters and digits)

An ACL user may hold several passwords: ``apply`` adds the new one
(``ACL SETUSER user #<sha256>``: only its hash goes over the wire), ``test``
logs in with it (``AUTH user new``), ``retire`` removes the previous one
(``!<sha256>``) after the grace period, ``rollback`` removes the new one. Both
work in between, so clients move over at their own pace. Every change checks
``ACL GETUSER`` first, so a step re-run after a crash changes nothing twice.
Standalone servers (one ACL table); on a replicated or clustered deployment
run it against each primary or use ACL files.
"""

from __future__ import annotations

import hashlib
import secrets as pyrandom
import string
from urllib.parse import urlsplit

from zerotrust_admin.errors import NotFoundError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationTestFailed, Rotator, require_keys

ALPHABET = string.ascii_letters + string.digits


def _hash(value: Secret) -> str:
    return hashlib.sha256(value.reveal()).hexdigest()


class RedisRotator(Rotator):
    kind = "redis"

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        problem = require_keys(target, "url", "user", "admin_secret")
        if problem:
            return problem
        if urlsplit(str(target["url"])).scheme not in ("redis", "rediss"):
            return "url must be redis:// or rediss://"
        length = target.get("length", 32)
        if not isinstance(length, int) or isinstance(length, bool) or not 16 <= length <= 512:
            return "length must be an integer from 16 to 512"
        return None

    def __init__(self, ctx):
        super().__init__(ctx)
        self._admin = None

    @property
    def where(self) -> str:
        parts = urlsplit(str(self.ctx.target["url"]))
        return f"{parts.hostname}:{parts.port or 6379}"

    def _client(self, username: str, password: Secret):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        target = self.ctx.target
        extra = {"ssl_ca_certs": target["ca_file"]} if target.get("ca_file") else {}
        return redis.Redis.from_url(str(target["url"]), username=username, password=password.reveal_text(),
                                    socket_timeout=float(target.get("timeout_seconds", 5)),
                                    socket_connect_timeout=float(target.get("timeout_seconds", 5)),
                                    retry=Retry(NoBackoff(), 0), **extra)  # a refused AUTH is an answer, not a reason to retry

    def _call(self, fn):
        from zerotrust_admin.sessions.redis_store import translate

        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - mapped to our errors, no server text in them
            mapped = translate(exc, self.where)
            if mapped is None:
                raise
            raise mapped from None

    @property
    def admin(self):
        if self._admin is None:
            secret = self.ctx.admin_credential()
            try:
                self._admin = self._client(str(self.ctx.target.get("admin_user", "default")), secret)
            finally:
                secret.wipe()
        return self._admin

    def _hashes(self) -> set[str]:
        user = str(self.ctx.target["user"])
        info = self._call(lambda: self.admin.execute_command("ACL", "GETUSER", user))
        if info is None:
            raise NotFoundError(f"the Redis ACL user {user!r} does not exist at {self.where}",
                                hint="create it with its permissions first (ACL SETUSER / users.acl); rotation changes passwords only")
        if isinstance(info, dict):
            fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in info.items()}
        else:
            fields = {(info[i].decode() if isinstance(info[i], bytes) else info[i]): info[i + 1] for i in range(0, len(info), 2)}
        return {(h.decode() if isinstance(h, bytes) else h) for h in fields.get("passwords") or []}

    def _setuser(self, rule: str) -> None:
        user = str(self.ctx.target["user"])
        self._call(lambda: self.admin.execute_command("ACL", "SETUSER", user, rule))

    # --- the steps ---------------------------------------------------------
    def create_pending(self, current: Secret | None) -> Secret:
        length = int(self.ctx.target.get("length", 32))
        return Secret("".join(pyrandom.choice(ALPHABET) for _ in range(length)))

    def apply(self, pending: Secret, current: Secret | None) -> None:
        digest = _hash(pending)
        if digest not in self._hashes():
            self._setuser("#" + digest)

    def test(self, pending: Secret) -> None:
        import redis

        client = self._client(str(self.ctx.target["user"]), pending)
        try:
            if not client.ping():
                raise RotationTestFailed(f"the new password of {self.ctx.target['user']!r} does not log in at {self.where}")
        except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError):
            raise RotationTestFailed(f"the new password of {self.ctx.target['user']!r} does not log in at {self.where}",
                                     hint="check the ACL user (on, no conflicting rules)") from None
        except redis.exceptions.RedisError as exc:
            from zerotrust_admin.errors import UnavailableError
            from zerotrust_admin.sessions.redis_store import translate

            raise translate(exc, self.where) or UnavailableError(f"Redis at {self.where} failed") from None
        finally:
            client.close()

    def retire(self, previous: Secret, current: Secret) -> None:
        self._remove(previous, keep=current)

    def rollback(self, pending: Secret, current: Secret | None) -> None:
        self._remove(pending, keep=current)

    def _remove(self, value: Secret, keep: Secret | None) -> None:
        digest = _hash(value)
        if keep is not None and _hash(keep) == digest:
            return
        if digest in self._hashes():
            self._setuser("!" + digest)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

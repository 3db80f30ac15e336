"""``Credentials``: STS temporary credentials that redact themselves and wipe on exit.

    with manager.get_aws_credentials(role_arn=...) as creds:
        boto3.client("s3", aws_access_key_id=creds.access_key_id,
                     aws_secret_access_key=creds.secret_access_key,
                     aws_session_token=creds.session_token)
    # here the secret key and token buffers are zeroed

The secret parts live in ``Secret`` buffers; the ``str`` a property returns is
a transient copy Python may keep around (best effort, like ``Secret``).
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timezone

from zerotrust_admin.secret import SealedSecret, Secret


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Credentials:
    """AccessKeyId (not secret), SecretAccessKey and SessionToken (secret), Expiration."""

    __slots__ = ("access_key_id", "_secret", "_token", "expiration", "role_arn", "session_name", "assumed_role_arn", "cached")

    def __init__(self, access_key_id: str, secret_access_key: str | bytes | Secret, session_token: str | bytes | Secret,
                 expiration: datetime, *, role_arn: str = "", session_name: str = "", assumed_role_arn: str = "", cached: bool = False):
        self.access_key_id = access_key_id
        # Long-lived (the Python API hands them out): kept encrypted under the
        # per-process key, decrypted on access (secret.SealedSecret).
        self._secret = SealedSecret(secret_access_key)
        self._token = SealedSecret(session_token)
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=timezone.utc)
        self.expiration = expiration.astimezone(timezone.utc)
        self.role_arn = role_arn
        self.session_name = session_name
        self.assumed_role_arn = assumed_role_arn
        self.cached = cached

    # --- the secret parts --------------------------------------------------
    @property
    def secret_access_key(self) -> str:
        return self._secret.reveal_text()

    @property
    def session_token(self) -> str:
        return self._token.reveal_text()

    @property
    def wiped(self) -> bool:
        return self._secret.wiped

    def wipe(self) -> None:
        self._secret.wipe()
        self._token.wipe()

    def __enter__(self) -> "Credentials":
        return self

    def __exit__(self, *exc) -> None:
        self.wipe()

    def __repr__(self) -> str:
        state = "wiped" if self.wiped else "redacted"
        return f"Credentials(access_key_id={self.access_key_id!r}, secret=<{state}>, expiration={_rfc3339(self.expiration)!r}, role_arn={self.role_arn!r})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("Credentials cannot be pickled")

    # --- renderings ----------------------------------------------------------
    @property
    def expiration_text(self) -> str:
        return _rfc3339(self.expiration)

    def seconds_left(self, now: float) -> float:
        return self.expiration.timestamp() - now

    def metadata(self) -> dict:
        """Everything but the secret parts (audit, ``--json`` headers)."""
        return {"access_key_id": self.access_key_id, "expiration": self.expiration_text, "role_arn": self.role_arn,
                "session_name": self.session_name, "assumed_role_arn": self.assumed_role_arn, "cached": self.cached}

    def process_json(self) -> str:
        """The AWS CLI / SDK ``credential_process`` document (Version 1)."""
        return json.dumps({"Version": 1, "AccessKeyId": self.access_key_id, "SecretAccessKey": self.secret_access_key,
                           "SessionToken": self.session_token, "Expiration": self.expiration_text})

    def json_document(self) -> str:
        return json.dumps({**self.metadata(), "secret_access_key": self.secret_access_key, "session_token": self.session_token}, indent=2)

    def env_lines(self) -> str:
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (
            ("AWS_ACCESS_KEY_ID", self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key),
            ("AWS_SESSION_TOKEN", self.session_token),
            ("AWS_CREDENTIAL_EXPIRATION", self.expiration_text),
        ))

    # --- cache serialisation (sealed by aws.cache before it is stored) -------
    def to_cache_bytes(self) -> bytes:
        return json.dumps({"a": self.access_key_id, "s": self.secret_access_key, "t": self.session_token,
                           "e": self.expiration.timestamp(), "r": self.role_arn, "n": self.session_name,
                           "u": self.assumed_role_arn}, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_cache_bytes(cls, data: bytes) -> "Credentials":
        d = json.loads(data.decode("utf-8"))
        return cls(d["a"], d["s"], d["t"], datetime.fromtimestamp(float(d["e"]), timezone.utc), role_arn=d.get("r", ""),
                   session_name=d.get("n", ""), assumed_role_arn=d.get("u", ""), cached=True)

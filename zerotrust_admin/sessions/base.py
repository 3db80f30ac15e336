"""The session store interface (``SessionStore``) and the ``Session`` record.

A session store holds three kinds of data, in the schema documented in
docs/sessions.md (the broker writes sessions in that schema):

* sessions: ``id``, ``user``, ``created``, ``expires``, ``source_ip``; a record
  disappears at its expiry; a per-user index makes "every session of U" a
  lookup, never a scan;
* revocation markers: "refuse every session of U created at or before T", per
  user, plus one global marker for ``revoke-sessions --all``. The broker calls
  ``check_session`` (or ``is_revoked``) on every request, so a session that a
  running revocation has not reached yet, or that was created while it ran, is
  refused all the same;
* an opaque blob cache (``cache_put`` / ``cache_get`` / ``cache_delete_prefix``)
  with per-entry expiry, for other features' short-lived data (cached AWS
  credentials). The store never looks inside a blob and never encrypts it:
  callers seal blobs before storing them (zerotrust_admin.crypto.seal).

Times are POSIX seconds (float, UTC). Implementations live in one module each
and are registered in ``zerotrust_admin.sessions``; one contract test suite
(tests/test_sessions_contract.py) runs against every implementation.
"""

from __future__ import annotations

import base64
import os
import re
import time
from typing import Callable, Iterator, Optional, Protocol, runtime_checkable

from zerotrust_admin.errors import DeniedError, NotFoundError, UnavailableError, UsageError
from zerotrust_admin.structs import asdict, struct

SESSION_ID_BYTES = 24
_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
# Kerberos principals (alice@EXAMPLE.COM, host/web1@EXAMPLE.COM) and plain names.
_USER = re.compile(r"^[A-Za-z0-9._@/+=,-]{1,256}$")
_NS = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

ProgressFn = Callable[[int], None]
"""Called with the number of items just processed (an increment)."""


class InterruptedDeletion(UnavailableError):
    """The store became unavailable part way through a bulk deletion; ``done``
    sessions were deleted before it did. Running the deletion again finishes it."""

    def __init__(self, message: str, hint: str | None = None, *, done: int = 0):
        super().__init__(message, hint)
        self.done = done


TAG_CHARS = 3  # a user's slot tag: 3 hex digits = 4,096 buckets (docs/sessions.md, "Redis Cluster")
_TAGGED_ID = re.compile(r"^([0-9a-f]{3})-[A-Za-z0-9_-]{8,124}$")


def user_tag(user: str) -> str:
    """The user's bucket: the first 3 hex digits of SHA-256(user). On a Redis
    Cluster a user's sessions, index and marker carry it as their hash tag, so
    they share one slot; session ids start with it (``<tag>-``), so a session
    is found from its id alone."""
    import hashlib

    return hashlib.sha256(user.encode("utf-8")).hexdigest()[:TAG_CHARS]


def id_tag(session_id: str) -> str | None:
    """The slot tag a session id carries (``3f2-...`` -> ``3f2``), or None."""
    match = _TAGGED_ID.match(session_id)
    return match.group(1) if match else None


def new_session_id(user: str | None = None) -> str:
    """A random, URL-safe session identifier (192 bits), prefixed with the
    user's slot tag when the user is given (``3f2-Ca42SC...``). It names a
    session; it is not a bearer credential, so it may appear in argv and audit
    records."""
    # what secrets.token_urlsafe does, without importing ``secrets`` (and
    # ``random``) on the credential_process path
    token = base64.urlsafe_b64encode(os.urandom(SESSION_ID_BYTES)).rstrip(b"=").decode("ascii")
    return f"{user_tag(user)}-{token}" if user is not None else token


def check_user(user: str) -> str:
    if not isinstance(user, str) or not _USER.match(user):
        raise UsageError(f"invalid user name {user!r}", hint="a Kerberos principal such as alice@EXAMPLE.COM")
    return user


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not _ID.match(session_id):
        raise UsageError(f"invalid session id {session_id!r}", hint="session ids are 8-128 characters of A-Z a-z 0-9 _ -")
    return session_id


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not _NS.match(namespace):
        raise UsageError(f"invalid cache namespace {namespace!r}")
    return namespace


@struct(frozen=True)
class Session:
    id: str
    user: str
    created: float
    expires: float
    source_ip: Optional[str] = None

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires

    def ttl_seconds(self, now: float | None = None) -> float:
        return max(0.0, self.expires - (time.time() if now is None else now))

    def to_dict(self) -> dict:
        from zerotrust_admin.timeutil import rfc3339
        from datetime import datetime, timezone

        d = asdict(self)
        d["created_at"] = rfc3339(datetime.fromtimestamp(self.created, timezone.utc))
        d["expires_at"] = rfc3339(datetime.fromtimestamp(self.expires, timezone.utc))
        return d


def make_session(user: str, ttl_seconds: float, source_ip: str | None = None, *, now: float | None = None, session_id: str | None = None) -> Session:
    check_user(user)
    if ttl_seconds <= 0:
        raise UsageError("a session's TTL must be positive")
    created = time.time() if now is None else now
    return Session(id=check_session_id(session_id) if session_id else new_session_id(user), user=user, created=created,
                   expires=created + float(ttl_seconds), source_ip=source_ip or None)


def revoked_by(session: Session, user_marker: float | None, global_marker: float | None) -> bool:
    """The broker's rule: a session is refused when it was created at or before
    its user's marker or the global marker."""
    return any(m is not None and session.created <= m for m in (user_marker, global_marker))


@runtime_checkable
class SessionStore(Protocol):
    """What every session store provides. Stores are used from one thread."""

    kind: str  # "sqlite" | "redis"

    def describe(self) -> str:
        """Where the store lives, without credentials (for messages and audit)."""

    def ping(self) -> None:
        """Raise UnavailableError / DeniedError when the store cannot be used."""

    # --- sessions ------------------------------------------------------
    def put(self, session: Session) -> None:
        """Write (or overwrite) one session and its index entry; the record
        expires at ``session.expires``."""

    def put_many(self, sessions: Iterator[Session], batch_size: int = 5000) -> int:
        """Bulk ``put`` (broker replay, benchmarks); returns how many were written."""

    def get(self, session_id: str) -> Session | None:
        """The live session, or None when it does not exist or has expired."""

    def list(self, user: str | None = None, limit: int | None = None) -> Iterator[Session]:
        """Live sessions (of ``user``), oldest first within a user."""

    def count(self, user: str | None = None) -> int:
        """Live sessions (of ``user``). Without a user this may walk the store."""

    def estimate_count(self) -> int:
        """A cheap upper bound of ``count()`` (for progress bars)."""

    # --- deletion (the building blocks of sessions.revoke) ---------------
    def delete_session(self, session_id: str) -> Session | None:
        """Delete one session and its index entry; the deleted session or None."""

    def delete_user(self, user: str) -> int:
        """Delete every session of ``user`` through the index (no scan)."""

    def delete_all(self, *, batch_size: int | None = None, progress: ProgressFn | None = None) -> int:
        """Delete every session and index, streaming in batches; the count.
        If the store fails midway it raises InterruptedDeletion whose ``done``
        attribute holds the count deleted so far; calling again finishes."""

    # --- revocation markers --------------------------------------------
    def set_marker(self, user: str | None, at: float) -> None:
        """Refuse sessions of ``user`` (None: of everyone) created at or before ``at``.
        A marker never moves backwards; it lives at least as long as the
        longest session could (``max_ttl``)."""

    def markers(self, user: str) -> tuple[float | None, float | None]:
        """(user marker, global marker), None where there is none."""

    def is_revoked(self, session: Session) -> bool:
        """True when a marker refuses ``session``."""

    def check_session(self, session_id: str) -> Session:
        """What the broker calls per request: the session when it is live and
        not revoked; NotFoundError when missing/expired, DeniedError when revoked."""

    # --- opaque blob cache (credentials cache) ----------------------------
    def cache_put(self, namespace: str, key: str, blob: bytes, ttl_seconds: float) -> None:
        """Store ``blob`` (already sealed by the caller) under (namespace, key) until the TTL ends."""

    def cache_get(self, namespace: str, key: str) -> bytes | None:
        """The blob, or None when missing or expired."""

    def cache_delete(self, namespace: str, key: str) -> bool:
        """Delete one entry; True when it existed."""

    def cache_delete_prefix(self, namespace: str, prefix: str) -> int:
        """Delete every entry of ``namespace`` whose key starts with ``prefix``
        (``""``: the whole namespace); the count. Keys are never decrypted."""

    def close(self) -> None: ...


class StoreHelpers:
    """Behaviour shared by the implementations, written once in terms of the protocol."""

    def is_revoked(self, session: Session) -> bool:
        user_marker, global_marker = self.markers(session.user)  # type: ignore[attr-defined]
        return revoked_by(session, user_marker, global_marker)

    def check_session(self, session_id: str) -> Session:
        session = self.get(check_session_id(session_id))  # type: ignore[attr-defined]
        if session is None:
            raise NotFoundError(f"session {session_id} does not exist or has expired")
        if self.is_revoked(session):
            raise DeniedError(f"session {session_id} of {session.user} has been revoked", hint="the user must authenticate again")
        return session

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # type: ignore[attr-defined]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float, *, what: str = "duration") -> float:
    """``8h``, ``30m``, ``90s``, ``2d``, ``1w`` or plain seconds -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text).lower())
        if not match:
            raise UsageError(f"{what} {text!r} is not a duration", hint="use e.g. 8h, 30m, 90s, 2d")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0:
        raise UsageError(f"{what} {text!r} must be positive")
    return seconds

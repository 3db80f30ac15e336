"""Role ARNs and the principal -> AWS session-name mapping.

AWS accepts 2-64 characters of ``[A-Za-z0-9_=,.@+-]`` in a RoleSessionName and a
SourceIdentity; we use the narrower ``[A-Za-z0-9_=,.@-]`` (no ``+``). Kerberos
principals (``svc/host@REALM``) do not fit, so the operator principal is mapped
deterministically (docs/aws-credentials.md, "Principal -> session name"):

1. A principal that is already 2-64 allowed characters and does not end like
   a mapped name (``=`` + 16 characters of ``[a-z2-7]``) is used as it is:
   ``alice@EXAMPLE.COM`` -> ``alice@EXAMPLE.COM``.
2. Anything else (a ``/``, another character, too short, too long, or a
   principal that looks like a mapped name) becomes a readable part plus a
   hash: ``/`` -> ``.``, every other disallowed character -> ``_``, cut to 47
   characters, then ``=`` and the first 80 bits of SHA-256(principal, UTF-8)
   in lower-case base32 (16 characters):
   ``svc/host@REALM`` -> ``svc.host@REALM=<16 chars>``.

Names of rule 1 never end like names of rule 2, and two names of rule 2 are
equal only if 80-bit hash prefixes collide, so two principals do not share a
session name: every issued session is attributable and revocable per user.
"""

from __future__ import annotations

import base64
import hashlib
import re

from zerotrust_admin.errors import UsageError
from zerotrust_admin.structs import struct

ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=,.@-")
MIN_LEN, MAX_LEN = 2, 64
HASH_CHARS = 16
READABLE_MAX = MAX_LEN - 1 - HASH_CHARS  # 47
_MAPPED_TAIL = re.compile(r"=[a-z2-7]{%d}\Z" % HASH_CHARS)
NAME_PATTERN = re.compile(r"\A[A-Za-z0-9_=,.@-]{2,64}\Z")

_ARN = re.compile(
    r"\Aarn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::(?P<account>\d{12}):role/"
    r"(?P<path>(?:[\x21-\x7e]{1,510}/)?)(?P<name>[A-Za-z0-9+=,.@_-]{1,64})\Z"
)
_ACCOUNT = re.compile(r"\A\d{12}\Z")
_EXTERNAL_ID = re.compile(r"\A[A-Za-z0-9+=,.@:/_-]{2,1224}\Z")


def session_name(principal: str) -> str:
    """The RoleSessionName / SourceIdentity for ``principal`` (see module doc)."""
    if not isinstance(principal, str) or not principal:
        raise UsageError("the operator principal is empty", hint="set ZEROTRUST_PRINCIPAL or obtain a Kerberos ticket")
    if NAME_PATTERN.match(principal) and not _MAPPED_TAIL.search(principal):
        return principal
    readable = "".join(c if c in ALLOWED else ("." if c == "/" else "_") for c in principal)[:READABLE_MAX]
    digest = hashlib.sha256(principal.encode("utf-8", "surrogatepass")).digest()[:10]
    return f"{readable}={base64.b32encode(digest).decode('ascii').lower()}"


@struct(frozen=True)
class RoleArn:
    arn: str
    partition: str
    account: str
    path: str
    name: str

    def __str__(self) -> str:
        return self.arn


def parse_role_arn(arn: str) -> RoleArn:
    """An IAM role ARN, or UsageError (exit 2) naming what is wrong."""
    text = arn.strip() if isinstance(arn, str) else ""
    match = _ARN.match(text)
    if not match:
        shown = text if len(text) <= 120 else text[:117] + "..."
        raise UsageError(f"{shown!r} is not an IAM role ARN",
                         hint="expected arn:aws:iam::<12-digit account>:role/[path/]<name>")
    return RoleArn(text, match["partition"], match["account"], match["path"], match["name"])


def check_account(account: str) -> str:
    account = str(account).strip()
    if not _ACCOUNT.match(account):
        raise UsageError(f"aws.allowed_accounts entry {account!r} is not a 12-digit account id")
    return account


def check_external_id(external_id: str) -> str:
    if not isinstance(external_id, str) or not _EXTERNAL_ID.match(external_id):
        raise UsageError("the external id must be 2-1224 characters of letters, digits and + = , . @ : / _ -")
    return external_id

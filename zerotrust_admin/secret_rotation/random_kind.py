"""``random``: API keys and other generic secrets, a new value from a declared policy.

target:
  length: 40                 # characters (default 32), with
  alphabet: alnum            # alnum | hex | base64url | letters | digits | any other string of >= 16 distinct characters
  bytes: 32                  # or: that many random bytes (exclusive with length/alphabet)
  prefix: "sk_"              # optional, prepended (not counted in length)
  webhook_url: https://...   # optional: hand the new value to the consuming service
  webhook_secret: api/hook   # the vault secret holding the HMAC key that signs it
  ca_file: /path/ca.pem      # optional, for an https webhook with a private CA

The webhook is signed as the breach notifications' webhook channel signs
(``X-ZeroTrust-Timestamp``, ``X-ZeroTrust-Signature: v1=HMAC-SHA256(key,
"<ts>." + body)``). Bodies: at ``apply`` ``{"event": "pending", "secret", "value"}``
(the service accepts it beside the current one), at ``finish`` ``{"event":
"current"}``, at ``retire`` / ``rollback`` ``{"event": "retire" | "rollback",
"fingerprint"}`` (the first 16 hex digits of the value's SHA-256): no value
is sent again. The receiver must treat a repeated message as a no-op (a run
resumed after a crash sends the step's message again).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as pyrandom
import string
import time

from zerotrust_admin.errors import UnavailableError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationTestFailed, Rotator

ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
    "letters": string.ascii_letters,
    "digits": string.digits,
}


def fingerprint(value: Secret) -> str:
    return hashlib.sha256(value.reveal()).hexdigest()[:16]


class RandomRotator(Rotator):
    kind = "random"

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        if "bytes" in target and ("length" in target or "alphabet" in target):
            return "bytes excludes length and alphabet"
        if "bytes" in target:
            n = target["bytes"]
            if not isinstance(n, int) or isinstance(n, bool) or not 16 <= n <= 4096:
                return "bytes must be an integer from 16 to 4096"
        length = target.get("length", 32)
        if not isinstance(length, int) or isinstance(length, bool) or not 16 <= length <= 4096:
            return "length must be an integer from 16 to 4096"
        alphabet = _alphabet(target)
        if alphabet is None:
            return f"alphabet must be one of {', '.join(ALPHABETS)} or a string of at least 16 distinct characters"
        prefix = target.get("prefix", "")
        if not isinstance(prefix, str) or len(prefix) > 64:
            return "prefix must be a string of at most 64 characters"
        if target.get("webhook_url"):
            from zerotrust_admin.errors import ConfigError
            from zerotrust_admin.notify.base import check_endpoint

            try:
                check_endpoint(str(target["webhook_url"]), "webhook_url")
            except ConfigError as exc:
                return exc.message
            if not target.get("webhook_secret"):
                return "webhook_url needs webhook_secret (the vault secret holding the HMAC signing key)"
        return None

    # --- the steps ---------------------------------------------------------
    def create_pending(self, current: Secret | None) -> Secret:
        target = self.ctx.target
        prefix = target.get("prefix", "").encode("utf-8")
        if "bytes" in target:
            return Secret(prefix + pyrandom.token_bytes(int(target["bytes"])))
        alphabet = _alphabet(target)
        return Secret(prefix + "".join(pyrandom.choice(alphabet) for _ in range(int(target.get("length", 32)))).encode("ascii"))

    def apply(self, pending: Secret, current: Secret | None) -> None:
        self._send({"event": "pending", "value": base64.b64encode(pending.reveal()).decode("ascii")
                    if "bytes" in self.ctx.target else pending.reveal_text()})

    def test(self, pending: Secret) -> None:
        # No system to log in to: the value must satisfy its declared policy.
        target = self.ctx.target
        value = pending.reveal()
        prefix = target.get("prefix", "").encode("utf-8")
        body = value[len(prefix):] if value.startswith(prefix) else None
        if body is None:
            raise RotationTestFailed(f"the new value of {self.ctx.entry.secret} does not start with its prefix")
        if "bytes" in target:
            ok = len(body) == int(target["bytes"])
        else:
            alphabet = set(_alphabet(target))
            ok = len(body) == int(target.get("length", 32)) and all(chr(c) in alphabet for c in body)
        if not ok:
            raise RotationTestFailed(f"the new value of {self.ctx.entry.secret} does not match its declared policy")

    def finish(self, pending: Secret, previous: Secret | None) -> None:
        self._send({"event": "current", "fingerprint": fingerprint(pending)})

    def retire(self, previous: Secret, current: Secret) -> None:
        self._send({"event": "retire", "fingerprint": fingerprint(previous)})

    def rollback(self, pending: Secret, current: Secret | None) -> None:
        self._send({"event": "rollback", "fingerprint": fingerprint(pending)})

    def _send(self, payload: dict) -> None:
        url = self.ctx.target.get("webhook_url")
        if not url:
            return
        from zerotrust_admin.notify.base import DeliveryError
        from zerotrust_admin.notify.http import post
        from zerotrust_admin.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

        key = self.ctx.read_secret(self.ctx.target["webhook_secret"])
        body = json.dumps({"secret": self.ctx.entry.secret, **payload}, separators=(",", ":"), sort_keys=True).encode("utf-8")
        timestamp = str(int(time.time()))
        try:
            post(str(url), body, timeout=float(self.ctx.target.get("timeout_seconds", 10)),
                 headers={TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(key.reveal(), timestamp, body)},
                 ca_file=self.ctx.target.get("ca_file"), what=f"the {self.ctx.entry.secret} rotation webhook")
        except DeliveryError as exc:
            raise UnavailableError(exc.message, hint="the consuming service did not take the message; the next run sends it again") from None
        finally:
            key.wipe()


def _alphabet(target: dict) -> str | None:
    name = target.get("alphabet", "alnum")
    if not isinstance(name, str):
        return None
    if name in ALPHABETS:
        return ALPHABETS[name]
    distinct = "".join(dict.fromkeys(name))
    if len(distinct) < 16 or not distinct.isprintable():
        return None
    return distinct

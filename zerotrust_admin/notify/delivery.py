"""Delivery with bounded retries, exponential backoff and a per-attempt
timeout, all channels in parallel; one audit record per channel.

A failing channel never raises out of ``deliver``: it comes back as a failed
``DeliveryResult`` for the caller to print and reflect in its exit status.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from zerotrust_admin.notify.base import DeliveryError, Notification

DEFAULT_RETRIES = 2          # so at most 3 attempts
DEFAULT_TIMEOUT = 5.0        # seconds per attempt
DEFAULT_BACKOFF = 0.5        # first wait; doubles, capped at MAX_BACKOFF, with jitter
MAX_BACKOFF = 8.0


@dataclass
class DeliveryResult:
    channel: str
    kind: str
    ok: bool
    attempts: int
    elapsed: float
    error: str | None = None

    def to_dict(self) -> dict:
        return {"channel": self.channel, "kind": self.kind, "ok": self.ok, "attempts": self.attempts,
                "elapsed_seconds": round(self.elapsed, 3), "error": self.error}


@dataclass(frozen=True)
class Policy:
    retries: int = DEFAULT_RETRIES
    timeout: float = DEFAULT_TIMEOUT
    backoff: float = DEFAULT_BACKOFF

    @classmethod
    def from_config(cls, config) -> "Policy":
        block = config.get("security.breach_notification") or {}
        retries = int(block.get("retries", DEFAULT_RETRIES))
        timeout = float(block.get("timeout_seconds", DEFAULT_TIMEOUT))
        backoff = float(block.get("backoff_seconds", DEFAULT_BACKOFF))
        return cls(retries=max(0, min(retries, 10)), timeout=max(0.1, min(timeout, 60.0)), backoff=max(0.0, min(backoff, MAX_BACKOFF)))


def deliver_one(channel, note: Notification, policy: Policy, sleep=time.sleep) -> DeliveryResult:
    start = time.monotonic()
    attempts = 0
    error = None
    while attempts <= policy.retries:
        attempts += 1
        try:
            channel.send_once(note, policy.timeout)
            return DeliveryResult(channel.name, channel.kind, True, attempts, time.monotonic() - start)
        except DeliveryError as exc:
            error = exc.message
            if not exc.retryable:
                break
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the others
            error = f"internal error ({type(exc).__name__})"
            break
        if attempts <= policy.retries:
            wait = min(MAX_BACKOFF, policy.backoff * (2 ** (attempts - 1)))
            sleep(wait * (0.5 + random.random() / 2))
    return DeliveryResult(channel.name, channel.kind, False, attempts, time.monotonic() - start, error)


def deliver(channels: list, note: Notification, policy: Policy, *, audit=None, actor=None, trigger: str | None = None) -> list[DeliveryResult]:
    if not channels:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(channels)), thread_name_prefix="notify") as pool:
        results = list(pool.map(lambda c: deliver_one(c, note, policy), channels))
    if audit is not None and actor is not None:
        for r in results:
            audit.append(event="notification", action="notify", resource=f"channel:{r.channel}", success=r.ok, actor=actor,
                         kind=r.kind, attempts=r.attempts, notification_id=note.id, about=trigger or note.event,
                         **({"error": r.error} if r.error else {}))
    return results

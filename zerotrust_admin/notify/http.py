"""POST JSON with a timeout, no redirects, and errors that name only the status."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from zerotrust_admin.notify.base import DeliveryError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect could leak the body elsewhere
        return None


def tls_context(ca_file: str | None = None, min_version: str = "1.2") -> ssl.SSLContext:
    from zerotrust_admin.tlspolicy import ssl_context  # the TLS policy: TLS 1.2+, AEAD suites only

    return ssl_context({"tls": {"min_version": str(min_version), **({"ca_file": ca_file} if ca_file else {})}})


def post(url: str, body: bytes, *, timeout: float, headers: dict | None = None, ok=(200, 201, 202, 204), ca_file: str | None = None, what: str = "endpoint") -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "zerotrust-admin", **(headers or {})})
    handlers: list = [_NoRedirect()]
    if url.startswith("https://"):
        handlers.append(urllib.request.HTTPSHandler(context=tls_context(ca_file)))
    else:
        # Plain http (loopback only, by configuration): never through a proxy named by
        # the environment, which the caller controls (threat model N1, R1): the body
        # may hold a webhook's payload or a rotated value.
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (TimeoutError, ssl.SSLError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else "connection failed"
        if isinstance(reason, ssl.SSLError) or isinstance(exc, ssl.SSLError):
            raise DeliveryError(f"{what}: TLS handshake failed", retryable=False) from None
        raise DeliveryError(f"{what}: {kind}", retryable=True) from None
    if status in ok:
        return status
    raise DeliveryError(f"{what} answered HTTP {status}", retryable=status >= 500 or status == 429)


def post_json(url: str, payload: dict, **kwargs) -> int:
    return post(url, json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"), **kwargs)

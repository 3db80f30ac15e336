"""An authenticated hvac client for a VaultSettings block, and the one mapping
of hvac / requests exceptions to our error types. hvac is imported on first use."""

from __future__ import annotations

from contextlib import contextmanager

from zerotrust_admin.errors import BusyError, ConfigError, DeniedError, NotFoundError, UnavailableError, UsageError, ZeroTrustError
from zerotrust_admin.vaultapi.settings import VaultSettings

LOGIN_REFUSED = "refused our credentials (AppRole role_id/secret_id or token)"
# The largest response body accepted from Vault (threat-model N2): a secret value
# is at most 1 MiB (base64 in JSON: ~1.4 MiB); a LIST of many names stays far
# below this. A bigger body is refused while it is read, never buffered whole.
MAX_BODY = 16 << 20


class ResponseRefused(UnavailableError):
    """Vault answered with a body over MAX_BODY or one that is not the JSON object the API defines (exit 6)."""


def refused_body(what: str, endpoint: str, why: str) -> ResponseRefused:
    return ResponseRefused(f"{what} at {endpoint} answered with {why}; refused",
                           hint="is the URL really a Vault/OpenBao server? check it and the network path to it")


class CheckAndSetFailed(BusyError):
    """A KV v2 check-and-set lost: someone wrote a newer version meanwhile (exit 7, retry)."""


def unavailable(what: str, endpoint: str, why: str = "unreachable", timeout: float | None = None, *, where: str = "secrets.config") -> UnavailableError:
    within = f" within {timeout:g} s" if timeout else ""
    return UnavailableError(f"{what} at {endpoint} is {why}{within}",
                            hint=f"check the address, the network and that the service is up; {where}.timeout sets the limit")


def tls_refused(what: str, endpoint: str, ca_file: str | None, *, where: str = "secrets.config") -> UnavailableError:
    against = f"against {ca_file}" if ca_file else "against the system CA bundle"
    return UnavailableError(f"{what} at {endpoint}: its TLS certificate does not verify {against}; refused",
                            hint=f"set {where}.ca_file to the CA that signed the server certificate")


def denied(what: str, endpoint: str, why: str = "refused our credentials", *, where: str = "secrets.config") -> DeniedError:
    return DeniedError(f"{what} at {endpoint} {why}",
                       hint=f"check the credentials in {where} (expired or wrong secret?) and the policy attached to them")


def not_found(name: str, version: int | None = None) -> NotFoundError:
    if version is not None:
        return NotFoundError(f"secret {name!r} has no version {version}", hint=f"see its versions with: zerotrust-admin vault history {name}")
    return NotFoundError(f"secret {name!r} not found", hint="list secrets with: zerotrust-admin vault list")


def missing_hvac(what: str) -> ConfigError:
    return ConfigError(f"the {what} needs the Python package hvac, which is not installed", hint="pip install 'zerotrust-admin[hashicorp]'")


@contextmanager
def api_errors(what: str, url: str, ca_file: str | None, timeout: float, *, name: str | None = None, version: int | None = None,
               login: bool = False, where: str = "secrets.config"):
    """hvac/requests exceptions -> our errors; never their text (it can hold a response body)."""
    import hvac.exceptions as hx
    import requests.exceptions as rx

    try:
        yield
    except ZeroTrustError:
        raise
    except rx.SSLError:
        raise tls_refused(what, url, ca_file, where=where) from None
    except (rx.ConnectTimeout, rx.ReadTimeout, rx.Timeout):
        raise unavailable(what, url, "not answering", timeout, where=where) from None
    except rx.ConnectionError:
        raise unavailable(what, url, "unreachable", timeout, where=where) from None
    except (hx.Unauthorized, hx.Forbidden):
        if login:
            raise denied(what, url, LOGIN_REFUSED, where=where) from None
        raise denied(what, url, f"denied access to {name!r}" if name else "denied the request", where=where) from None
    except hx.InvalidPath:
        raise not_found(name if name is not None else "(path)", version) from None
    except hx.InvalidRequest as exc:
        if login:
            raise denied(what, url, LOGIN_REFUSED, where=where) from None
        if "check-and-set" in str(exc):
            raise CheckAndSetFailed(f"secret {name!r} changed meanwhile (check-and-set failed)", hint="read it again and retry") from None
        raise UsageError(f"{what} at {url} rejected the request for {name!r} (HTTP 400)") from None
    except (hx.VaultDown, hx.InternalServerError, hx.BadGateway, hx.UnexpectedError, hx.RateLimitExceeded):
        raise unavailable(what, url, "failing (server error)", where=where) from None
    except hx.VaultError:
        raise unavailable(what, url, "returning an unexpected error", where=where) from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        # A body that is not JSON (requests' JSONDecodeError is a ValueError) or
        # lacks the fields the API defines.
        raise refused_body(what, url, "a malformed response") from None
    except rx.RequestException:
        raise unavailable(what, url, "returning an unexpected error", where=where) from None


@contextmanager
def parsed(what: str, url: str):
    """Reading fields out of a Vault response: a missing or mistyped field is a
    malformed response (exit 6), never an internal error."""
    try:
        yield
    except ZeroTrustError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        raise refused_body(what, url, "a malformed response") from None


def capped_session(settings: VaultSettings, what: str, url: str):
    """A requests.Session for hvac: the TLS policy for https, no redirects
    followed by the caller, and every response body read with a cap (N2)."""
    import requests

    if url.startswith("https://") and settings.tls_verify():
        from zerotrust_admin.tlspolicy import requests_session

        session = requests_session(settings.tls_policy())  # TLS 1.2+, AEAD suites only (docs/security-model.md)
    else:
        session = requests.Session()
    if not url.startswith("https://"):
        # N1: a plain-http endpoint (loopback only, endpoint.check_url) is never
        # reached through a proxy from the environment (HTTP_PROXY, http_proxy,
        # ALL_PROXY): the proxy would read X-Vault-Token in clear. trust_env off
        # also keeps ~/.netrc out; no proxy is configured, so none is used.
        # https keeps the environment's proxies: a CONNECT tunnel carries TLS
        # end to end (the certificate is verified against our CA), so the proxy
        # never sees the token (docs/providers.md).
        session.trust_env = False
        session.proxies = {}

    def cap(response, *args, **kwargs):
        # Runs before requests reads the body (Session.send dispatches hooks first).
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            response.close()
            raise refused_body(what, url, f"a body of {int(declared)} bytes (the limit is {MAX_BODY})")
        body = response.raw.read(MAX_BODY + 1, decode_content=True) if response.raw is not None else b""
        if len(body) > MAX_BODY:
            response.close()
            raise refused_body(what, url, f"a body over {MAX_BODY} bytes")
        response._content = body
        response._content_consumed = True
        try:
            response.raw.release_conn()  # read to the end: the connection goes back to the pool
        except Exception:  # noqa: BLE001 - only pooling is lost
            pass
        return response

    session.hooks["response"].append(cap)
    return session


def make_client(settings: VaultSettings, *, what: str, token: str | None = None):
    """An authenticated hvac client. The URL passes the N1 check before any
    connection; ``token`` is one this process already obtained."""
    try:
        import hvac
    except ImportError:
        raise missing_hvac(what) from None
    url = settings.require_url()
    timeout = settings.timeout()
    ca_file = settings.ca_file()
    verify: bool | str = ca_file if ca_file else True
    if not settings.tls_verify():
        verify = False
    session = capped_session(settings, what, url)
    # Redirects are not followed: X-Vault-Token would go along to wherever the
    # Location points, over whatever scheme (N1). Vault standbys forward instead.
    client = hvac.Client(url=url, timeout=timeout, verify=verify, namespace=settings.namespace(), session=session, allow_redirects=False)
    if token:
        client.token = token
        return client
    method, role_id, secret_id, static_token = settings.auth(what)
    if method == "token":
        with static_token:
            client.token = static_token.reveal_text()
        with api_errors(what, url, ca_file, timeout, login=True, where=settings.where):
            client.auth.token.lookup_self()
        return client
    with role_id, secret_id, api_errors(what, url, ca_file, timeout, login=True, where=settings.where):
        client.auth.approle.login(role_id=role_id.reveal_text(), secret_id=secret_id.reveal_text(), mount_point=settings.approle_mount())
    return client

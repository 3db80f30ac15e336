"""Who the operator is and where they are (PRODUCT.md, "Operator identity";
docs/threat-model.md rows I1 and F2; docs/security-model.md section 1).

Principal, in order: ZEROTRUST_PRINCIPAL (service accounts, cron), the default
principal of the Kerberos credential cache (FILE ccache read directly; only
while one of its tickets is unexpired), then ``<os-user>@<host>`` (the user of
the process's uid, never ``$USER``).

How sure we are (``Identity.assurance``, written to every audit record as
``identity``):

- ``verified``: a Kerberos principal whose ticket was checked with the real KDC
  (``security.identity.verify: kdc``): the cache's TGT is used in a TGS exchange
  for the host service and the service ticket is decrypted with the host keytab
  (MIT ``kvno``). Cached service tickets are left out of that exchange: their
  client name is plain text in the cache file and ``kvno -k`` does not compare
  it with the one inside the ticket.
- ``claimed``: ``ZEROTRUST_PRINCIPAL``, or a ccache that was not verified.
- ``os``: the OS user of the process's uid, as the kernel says.

The source IP (``SSH_CLIENT``/``SSH_CONNECTION``) is always claimed.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from zerotrust_admin import structs
from zerotrust_admin.audit.log import Actor
from zerotrust_admin.errors import DeniedError, UnavailableError, UsageError

MAX_PRINCIPAL_CHARS = 256
VERIFY_MODES = ("none", "kdc")
# kvno runs with this PATH and nothing else from the caller's environment: the
# KDC, keytab and tool are the deployment's choice, not the caller's.
SAFE_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
DEFAULT_KRB5_CONFIG = "/etc/krb5.conf"
DEFAULT_KEYTAB = "/etc/krb5.keytab"


# --- F2: what a principal may look like -----------------------------------------
def principal_problem(value: str) -> str | None:
    """Why ``value`` cannot be a principal (control characters, length), or None."""
    if len(value) > MAX_PRINCIPAL_CHARS:
        return f"is {len(value)} characters long (at most {MAX_PRINCIPAL_CHARS})"
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return "contains control characters"
    return None


def check_principal(value: str, origin: str) -> str:
    """``value`` when it is a printable principal; else UsageError (exit 2) that
    names where it came from and never echoes it."""
    problem = principal_problem(value)
    if problem:
        raise UsageError(f"the principal from {origin} {problem}; refused",
                         hint="a principal is printable text such as alice@EXAMPLE.COM")
    return value


# --- settings (security.identity) -----------------------------------------------
@structs.struct(frozen=True)
class IdentitySettings:
    """``security.identity``: whether and how a Kerberos identity is proven."""

    verify: str = "none"  # none | kdc
    keytab: str = DEFAULT_KEYTAB
    service: str | None = None  # default host/<fqdn>
    require: bool = False
    timeout_seconds: float = 5.0
    krb5_config: str = DEFAULT_KRB5_CONFIG
    kvno: str | None = None  # default: kvno found on SAFE_PATH

    @classmethod
    def from_config(cls, config) -> "IdentitySettings":
        if config is None:
            return cls()
        if isinstance(config, dict):
            section = (config.get("security") or {}).get("identity") or {}
        else:
            section = config.get("security.identity") or {}
        if not isinstance(section, dict):
            raise UsageError("security.identity must be a mapping", hint="see docs/security-model.md, section 1")
        verify = str(section.get("verify", "none")).lower()
        if verify not in VERIFY_MODES:
            raise UsageError(f"security.identity.verify must be one of {', '.join(VERIFY_MODES)}", hint="verify: kdc needs keytab and service")
        require = section.get("require", False)
        if not isinstance(require, bool):
            raise UsageError("security.identity.require must be true or false")
        if require and verify != "kdc":
            raise UsageError("security.identity.require: true needs verify: kdc (nothing else proves an identity)",
                             hint="set security.identity.verify: kdc with keytab and service, or require: false")
        timeout = section.get("timeout_seconds", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
            raise UsageError("security.identity.timeout_seconds must be a number of seconds in (0, 60]")
        service = section.get("service")
        for key in ("keytab", "service", "krb5_config", "kvno"):
            value = section.get(key)
            if value is not None and (not isinstance(value, str) or not value or principal_problem(value)):
                raise UsageError(f"security.identity.{key} must be a non-empty printable string")
        return cls(verify=verify, keytab=str(Path(section.get("keytab", DEFAULT_KEYTAB)).expanduser()),
                   service=service, require=require, timeout_seconds=float(timeout),
                   krb5_config=str(Path(section.get("krb5_config", DEFAULT_KRB5_CONFIG)).expanduser()),
                   kvno=section.get("kvno"))

    @property
    def service_principal(self) -> str:
        return self.service or f"host/{socket.getfqdn()}"


# --- the identity ------------------------------------------------------------------
@structs.struct(frozen=True)
class Identity:
    """Which principal was chosen, from which source, how sure we are, and why
    other sources were not used."""

    principal: str
    source: str  # "env" | "kerberos" | "os"
    detail: str
    notes: tuple[str, ...] = ()
    expires: float | None = None
    assurance: str = "claimed"  # "verified" | "claimed" | "os": the audit record's ``identity``
    verify_ms: float | None = None

    @property
    def assurance_text(self) -> str:
        return {
            "verified": "verified: ticket checked with the KDC and the host keytab",
            "os": "os: the user of this process, as the kernel says",
        }.get(self.assurance, "claimed: not verified")

    def describe(self) -> str:
        return f"identity: {self.principal} ({self.detail}); {self.assurance_text}"

    def to_dict(self) -> dict:
        return {"principal": self.principal, "assurance": self.assurance, "source": self.source, "detail": self.detail}


class VerificationFailed(Exception):
    """The KDC or the keytab said no: the ticket does not prove the principal."""


class KdcUnavailable(Exception):
    """No answer within the timeout (KDC down, kvno missing)."""


def principal(environ: dict | None = None) -> str:
    return resolve(environ).principal


def resolve(environ: dict | None = None, *, now: float | None = None, settings: IdentitySettings | None = None) -> Identity:
    """The operator principal, in order: ZEROTRUST_PRINCIPAL, a valid Kerberos
    ticket's default principal (verified with the KDC when settings say so),
    the OS user. ``notes`` say why a Kerberos cache that exists was not used
    (expired, unreadable, damaged, failed verification).

    With ``settings.require`` only a verified Kerberos identity is accepted:
    anything else is DeniedError (exit 4), a KDC that does not answer in time
    UnavailableError (exit 6). A principal with control characters or longer
    than 256 characters is UsageError (exit 2) from any source."""
    env = os.environ if environ is None else environ
    settings = settings or IdentitySettings()
    explicit = env.get("ZEROTRUST_PRINCIPAL")
    if explicit:
        check_principal(explicit, "ZEROTRUST_PRINCIPAL")
        if settings.require:
            raise DeniedError("ZEROTRUST_PRINCIPAL is a claim, and security.identity.require accepts only a Kerberos ticket verified with the KDC",
                              hint="unset ZEROTRUST_PRINCIPAL and kinit (cron: kinit -k -t <its own keytab> <principal>)")
        return Identity(explicit, "env", "from ZEROTRUST_PRINCIPAL", assurance="claimed")
    notes: list[str] = []
    cache = ccache_info(env, now=now)
    refusal = cache.problem
    if cache.usable:
        check_principal(cache.principal, f"the Kerberos credential cache {cache.name}")
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cache.expires)) if cache.expires else "unknown"
        where = f"Kerberos ticket in {cache.name}, valid until {until}"
        if settings.verify != "kdc":
            return Identity(cache.principal, "kerberos", where, (), cache.expires, "claimed")
        try:
            elapsed_ms = verify_with_kdc(cache, settings)
        except KdcUnavailable as exc:
            if settings.require:
                raise UnavailableError(f"the Kerberos ticket for {cache.principal} could not be verified: {exc}",
                                       hint=f"check that the KDC in {settings.krb5_config} is reachable, then retry") from None
            refusal = f"the Kerberos ticket for {cache.principal} could not be verified ({exc})"
        except VerificationFailed as exc:
            if settings.require:
                raise DeniedError(f"the Kerberos ticket for {cache.principal} in {cache.name} failed verification with the KDC: {exc}",
                                  hint="kinit again; a ticket that the KDC did not issue proves nothing") from None
            refusal = f"the Kerberos ticket for {cache.principal} in {cache.name} failed verification with the KDC ({exc})"
        else:
            return Identity(cache.principal, "kerberos", f"{where}, verified for {settings.service_principal} in {elapsed_ms:.0f} ms",
                            (), cache.expires, "verified", elapsed_ms)
        notes.append(refusal)
    elif cache.problem and cache.problem_kind not in ("missing", "unsupported"):
        notes.append(cache.problem)
    if settings.require:
        why = refusal or "no Kerberos ticket"
        raise DeniedError(f"no verified Kerberos identity, and security.identity.require is true: {why}",
                          hint="kinit, then retry")
    fallback = f"{os_user()}@{socket.gethostname()}"
    why = f"; {refusal}" if refusal else ""
    return Identity(fallback, "os", f"OS user at this host{why}", tuple(notes), assurance="os")


def os_user() -> str:
    """The name of the process's effective uid (not $USER or $LOGNAME, which the caller sets)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


# --- once per process --------------------------------------------------------------
_ESTABLISHED: dict = {}
_LAST_SETTINGS: list = []


def establish(environ: dict | None = None, *, config=None, settings: IdentitySettings | None = None) -> Identity:
    """``resolve`` once per process for the same environment and settings (the
    KDC round trip runs once per command). Without ``config`` or ``settings``,
    the settings of the last call are used, so library code that asks for the
    current actor later in a command gets the same answer as the CLI."""
    env = os.environ if environ is None else environ
    if settings is None:
        if config is not None:
            settings = IdentitySettings.from_config(config)
        else:
            settings = _LAST_SETTINGS[-1] if _LAST_SETTINGS else IdentitySettings()
    key = (settings, env.get("ZEROTRUST_PRINCIPAL"), env.get("KRB5CCNAME"), os.geteuid())
    who = _ESTABLISHED.get(key)
    if who is None:
        who = _ESTABLISHED[key] = resolve(env, settings=settings)
    _LAST_SETTINGS[:] = [settings]
    return who


def source_ip(environ: dict | None = None) -> str:
    return source_ip_info(environ)[0]


def source_ip_info(environ: dict | None = None) -> tuple[str, str]:
    """(address, where it came from). An SSH address is whatever the caller's
    environment says: always claimed."""
    env = os.environ if environ is None else environ
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        value = env.get(var)
        if value:
            return value.split()[0], var
    try:
        # No packet is sent: connecting a UDP socket only picks the outgoing address.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            return sock.getsockname()[0], "host"
    except OSError:
        return "127.0.0.1", "host"


def actor_for(who: Identity, environ: dict | None = None) -> Actor:
    return Actor(user=who.principal, source_ip=source_ip(environ), identity=who.assurance)


def current_actor(environ: dict | None = None, *, config=None) -> Actor:
    return actor_for(establish(environ, config=config), environ)


# --- verification with the KDC -----------------------------------------------------
def verify_with_kdc(cache: "CcacheInfo", settings: IdentitySettings) -> float:
    """Prove ``cache.principal`` with the KDC; milliseconds taken.

    ``kvno --no-store -c <copy> -k <keytab> <service>`` on a copy of the cache
    that holds only its ticket-granting tickets, so the service ticket comes
    from a TGS exchange now (the client library checks that the KDC's reply
    names the cache's client) and is decrypted with the host keytab. The copy
    lives in a memfd (never on disk) and kvno gets a clean environment:
    PATH=SAFE_PATH and KRB5_CONFIG from settings.
    """
    import shutil
    import subprocess  # nosec B404 - fixed argv, no shell

    copy = tgt_only_ccache(cache.data)
    keytab = Path(settings.keytab)
    try:
        st = keytab.stat()
    except OSError as exc:
        raise VerificationFailed(f"the keytab {keytab} cannot be read ({exc.strerror})") from None
    if st.st_mode & 0o004:
        raise VerificationFailed(f"the keytab {keytab} is readable by everyone, so anyone can forge a ticket for it (chmod 600)")
    if not os.access(keytab, os.R_OK):
        raise VerificationFailed(f"the keytab {keytab} is not readable by this user")
    kvno = settings.kvno or shutil.which("kvno", path=SAFE_PATH)
    if not kvno or not os.access(kvno, os.X_OK):
        raise KdcUnavailable("MIT kvno is not installed (apt-get install krb5-user)")
    env = {"PATH": SAFE_PATH, "KRB5_CONFIG": settings.krb5_config, "LC_ALL": "C"}
    fd = os.memfd_create("zt-ccache")  # close-on-exec; pass_fds hands it to kvno alone
    try:
        os.write(fd, copy)
        argv = [kvno, "--no-store", "-c", f"FILE:/dev/fd/{fd}", "-k", f"FILE:{keytab}", settings.service_principal]
        started = time.perf_counter()
        try:
            proc = subprocess.run(argv, env=env, pass_fds=(fd,), stdin=subprocess.DEVNULL, capture_output=True,  # nosec B603
                                  timeout=settings.timeout_seconds, check=False)
        except subprocess.TimeoutExpired:
            raise KdcUnavailable(f"no answer from the KDC within {settings.timeout_seconds:g} s") from None
        except OSError as exc:
            raise KdcUnavailable(f"kvno could not run ({exc.strerror})") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        os.close(fd)
    if proc.returncode == 0 and b"keytab entry valid" in proc.stdout:
        return elapsed_ms
    reason = _kvno_reason(proc.stderr or proc.stdout)
    lowered = reason.lower()
    # "Cannot find KDC for realm" (a realm krb5_config does not know) is a failure, not an outage.
    if any(s in lowered for s in ("cannot contact any kdc", "timed out", "connection refused")):
        raise KdcUnavailable(reason)
    raise VerificationFailed(reason)


def _kvno_reason(raw: bytes) -> str:
    """kvno's last message, printable and short (it may quote names from the cache)."""
    lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    text = lines[-1] if lines else "kvno failed"
    if text.startswith("kvno: "):
        text = text[6:]
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text[:200]


def tgt_only_ccache(data: bytes) -> bytes:
    """The cache with only its ticket-granting tickets (server ``krbtgt/...``)."""
    walked = _walk_ccache(data)
    if walked is None:
        raise VerificationFailed("the credential cache is damaged")
    header_end, creds = walked
    keep = [data[c.start:c.end] for c in creds if c.server_components[:1] == [b"krbtgt"]]
    if not keep:
        raise VerificationFailed("the credential cache holds no ticket-granting ticket")
    return data[:header_end] + b"".join(keep)


# --- reading the FILE ccache ---------------------------------------------------------
def ccache_path(env) -> Path | None:
    name = env.get("KRB5CCNAME")
    if name:
        if name.startswith("FILE:"):
            return Path(name[5:])
        if ":" in name.split("/")[0]:
            return None  # KEYRING:, KCM:, MEMORY:, DIR: are not read directly
        return Path(name)
    return Path(f"/tmp/krb5cc_{os.getuid()}")  # nosec B108 - MIT Kerberos default ccache location, read only


def ccache_principal(env) -> str | None:
    """The default principal of a FILE credential cache (format versions 2-4)."""
    path = ccache_path(env)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(65536)
    except OSError:
        return None
    return parse_ccache_principal(data)


@structs.struct(frozen=True)
class CcacheInfo:
    name: str
    principal: str | None = None
    expires: float | None = None  # latest end time of a non-config credential
    problem: str | None = None
    problem_kind: str | None = None  # missing | unsupported | unreadable | damaged | expired | empty
    data: bytes = structs.field(default=b"", repr=False, compare=False)  # the cache as read (holds session keys: never logged)

    @property
    def usable(self) -> bool:
        return self.principal is not None and self.problem is None


MAX_CCACHE_BYTES = 1 << 20


def ccache_info(env, *, now: float | None = None) -> CcacheInfo:
    """Read a FILE ccache: default principal and whether any ticket is still valid."""
    now = time.time() if now is None else now
    path = ccache_path(env)
    if path is None:
        return CcacheInfo(env.get("KRB5CCNAME", ""), problem=f"credential cache {env.get('KRB5CCNAME')} is not a FILE cache (not read)", problem_kind="unsupported")
    name = f"FILE:{path}"
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CCACHE_BYTES)
    except FileNotFoundError:
        return CcacheInfo(name, problem=f"no Kerberos credential cache at {path}", problem_kind="missing")
    except OSError as exc:
        return CcacheInfo(name, problem=f"Kerberos credential cache {path} is unreadable ({exc.strerror})", problem_kind="unreadable")
    parsed = parse_ccache(data)
    if parsed is None:
        return CcacheInfo(name, problem=f"Kerberos credential cache {path} is damaged or in an unknown format", problem_kind="damaged")
    default, end_times = parsed
    if principal_problem(default):
        # Not echoed, not used: resolve() refuses it (F2).
        return CcacheInfo(name, default, data=data)
    if not end_times:
        return CcacheInfo(name, default, problem=f"Kerberos credential cache {path} holds no ticket", problem_kind="empty")
    expires = max(end_times)
    if expires <= now:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return CcacheInfo(name, default, expires, problem=f"the Kerberos ticket for {default} in {path} expired at {when}", problem_kind="expired")
    return CcacheInfo(name, default, expires, data=data)


@structs.struct(frozen=True)
class _Credential:
    start: int
    end: int
    server_realm: str
    server_components: list
    endtime: int
    ticket: bytes = structs.field(default=b"", repr=False)


def _walk_ccache(data: bytes) -> tuple[int, list[_Credential]] | None:
    """(offset after the default principal, credentials) of a v3/v4 FILE ccache.

    Layout (MIT "ccache file format"): header, default principal, then
    credentials: client, server, keyblock, 4 times (auth, start, end, renew),
    is_skey, flags, addresses, authdata, ticket, second ticket.
    """
    if parse_ccache_principal(data) is None or data[1] not in (3, 4):
        return None
    pos = 2
    try:
        if data[1] == 4:
            (header_len,) = struct.unpack_from(">H", data, pos)
            pos += 2 + header_len

        def u16() -> int:
            nonlocal pos
            (v,) = struct.unpack_from(">H", data, pos)
            pos += 2
            return v

        def u32() -> int:
            nonlocal pos
            (v,) = struct.unpack_from(">I", data, pos)
            pos += 4
            return v

        def octets() -> bytes:
            nonlocal pos
            length = u32()
            if pos + length > len(data):
                raise ValueError("short")
            value = data[pos : pos + length]
            pos += length
            return value

        def principal_at() -> tuple[str, list[bytes]]:
            u32()  # name type
            count = u32()
            if count > 64:
                raise ValueError("too many components")
            realm = octets()
            return realm.decode("utf-8", "replace"), [octets() for _ in range(count)]

        principal_at()  # default principal
        header_end = pos
        creds: list[_Credential] = []
        while pos < len(data):
            start = pos
            principal_at()  # client
            server_realm, server_components = principal_at()
            u16()  # enctype
            if data[1] == 3:
                u16()
            octets()  # key
            _auth, _start, end, _renew = u32(), u32(), u32(), u32()
            if pos + 1 > len(data):
                raise ValueError("short")
            pos += 1  # is_skey
            u32()  # flags
            for _ in range(u32()):
                u16()
                octets()
            for _ in range(u32()):
                u16()
                octets()
            ticket = octets()
            octets()  # second ticket
            creds.append(_Credential(start, pos, server_realm, server_components, end, ticket))
        return header_end, creds
    except (IndexError, struct.error, ValueError):
        return None


def parse_ccache(data: bytes) -> tuple[str, list[int]] | None:
    """(default principal, [end time of each ticket]) of a v3/v4 FILE ccache.
    Configuration entries (server realm ``X-CACHECONF:``) are skipped."""
    walked = _walk_ccache(data)
    if walked is None:
        return None
    return parse_ccache_principal(data), [c.endtime for c in walked[1] if c.server_realm != "X-CACHECONF:"]


def parse_ccache_principal(data: bytes) -> str | None:
    try:
        if data[0] != 5 or data[1] not in (2, 3, 4):
            return None
        pos = 2
        if data[1] == 4:
            (header_len,) = struct.unpack_from(">H", data, pos)
            pos += 2 + header_len
        _name_type, count = struct.unpack_from(">II", data, pos)
        pos += 8

        def counted() -> str:
            nonlocal pos
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            value = data[pos : pos + length]
            if len(value) != length:
                raise ValueError("short")
            pos += length
            return value.decode("utf-8")

        realm = counted()
        if not count or count > 16:
            return None
        components = [counted() for _ in range(count)]
        return "/".join(components) + "@" + realm
    except (IndexError, struct.error, ValueError, UnicodeDecodeError):
        return None

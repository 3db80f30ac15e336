"""``keytab``: the keys of a Kerberos service principal, through MIT kadmin.

target:
  principal: HTTP/app.example.com@EXAMPLE.COM
  realm: EXAMPLE.COM             # default: the principal's realm
  kadmin: local                  # kadmin.local on the KDC host (the only mode built)
  krb5_config: /etc/krb5.conf    # optional: KRB5_CONFIG for the MIT tools
  kdc_profile: /etc/krb5kdc/kdc.conf   # optional: KRB5_KDC_PROFILE
  enctypes: [aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96]
  length: 40                     # of the random password the new keys derive from

The vault value is the keytab (binary). The new keys come from a random
password chosen first (``create_pending``, recorded in the state record), so
every step can be re-done after a crash: ``apply`` sets it with ``kadmin.local
cpw`` (password on stdin; skipped when a ``kinit`` with it already works), which
raises the kvno; ``test`` builds a keytab with the new kvno (``ktutil addent
-password``, in memory: a memfd, never a file) and gets a ticket with it
(``kinit -k``); ``finish`` writes the keytab holding the previous kvno's entries
and the new ones, so tickets issued before the change still decrypt during the
grace period; ``retire`` writes a keytab with the newest kvno only (one more
vault version). ``rollback`` cannot bring back keys the KDC has replaced: a
failure after ``apply`` stays recorded and the next run rolls forward (tests
again, then finishes). Window: from ``apply`` until a service loads the new
keytab, tickets for the new kvno do not decrypt with the old keytab.
"""

from __future__ import annotations

import json
import os
import secrets as pyrandom
import shutil
import string
import struct
import subprocess

from zerotrust_admin.errors import UnavailableError, UsageError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationTestFailed, Rotator, require_keys

ALPHABET = string.ascii_letters + string.digits
DEFAULT_ENCTYPES = ["aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96"]
KEYTAB_HEADER = b"\x05\x02"


def _tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise UnavailableError(f"the MIT Kerberos tool {name} is not installed", hint="apt-get install krb5-admin-server krb5-user")
    return path


def keytab_entries(data: bytes) -> list[tuple[int, bytes]]:
    """[(kvno, raw entry with its length prefix)] of a v0x502 keytab; UsageError if malformed."""
    if data[:2] != KEYTAB_HEADER:
        raise UsageError("the value is not a keytab (version 0x502)")
    out, pos = [], 2
    while pos + 4 <= len(data):
        (size,) = struct.unpack(">i", data[pos:pos + 4])
        if size < 0:  # a hole left by a removed entry
            pos += 4 - size
            continue
        entry = data[pos + 4:pos + 4 + size]
        if len(entry) != size:
            raise UsageError("the keytab is truncated")
        try:
            (count,) = struct.unpack(">H", entry[:2])
            p = 2
            for _ in range(count + 1):  # realm, then the components
                (n,) = struct.unpack(">H", entry[p:p + 2])
                p += 2 + n
            p += 4 + 4  # name type, timestamp
            kvno = entry[p]
            p += 1
            (_etype, klen) = struct.unpack(">HH", entry[p:p + 4])
            p += 4 + klen
            if size - p >= 4:
                (kvno32,) = struct.unpack(">I", entry[p:p + 4])
                kvno = kvno32 or kvno
        except (struct.error, IndexError):
            raise UsageError("the keytab has a malformed entry") from None
        out.append((kvno, data[pos:pos + 4 + size]))
        pos += 4 + size
    return out


class KeytabRotator(Rotator):
    kind = "keytab"
    keeps_previous = False

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        problem = require_keys(target, "principal")
        if problem:
            return problem
        if target.get("kadmin", "local") != "local":
            return "kadmin must be local (kadmin.local on the KDC host); remote kadmin is not built"
        enctypes = target.get("enctypes", DEFAULT_ENCTYPES)
        if not isinstance(enctypes, list) or not enctypes or not all(isinstance(e, str) and e.replace("-", "").isalnum() for e in enctypes):
            return "enctypes must be a list of Kerberos encryption type names"
        if not isinstance(target["principal"], str) or not all(c.isalnum() or c in "/@._-" for c in target["principal"]):
            return "principal must be a Kerberos principal name"
        return None

    # --- helpers -------------------------------------------------------------
    @property
    def principal(self) -> str:
        p = str(self.ctx.target["principal"])
        return p if "@" in p else f"{p}@{self.realm}"

    @property
    def realm(self) -> str:
        p = str(self.ctx.target["principal"])
        return str(self.ctx.target.get("realm") or (p.split("@", 1)[1] if "@" in p else ""))

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
        for key, var in (("krb5_config", "KRB5_CONFIG"), ("kdc_profile", "KRB5_KDC_PROFILE")):
            if self.ctx.target.get(key):
                env[var] = str(self.ctx.target[key])
        return env

    def _run(self, argv: list[str], stdin: bytes, *, pass_fds=(), what: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, env=self._env(), pass_fds=pass_fds, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"{what} did not finish within 30 s") from None

    def _kadmin(self, query: str, stdin: bytes = b"") -> str:
        argv = [_tool("kadmin.local")] + (["-r", self.realm] if self.realm else []) + ["-q", query]
        proc = self._run(argv, stdin, what="kadmin.local")
        out = proc.stdout.decode(errors="replace")
        if proc.returncode != 0 or "error" in proc.stderr.decode(errors="replace").lower():
            raise UnavailableError(f"kadmin.local refused '{query.split()[0]}' for {self.principal}",
                                   hint="run on the KDC host as a user that can read the KDC database; check target.realm and kdc_profile")
        return out

    def kvno(self) -> int:
        for line in self._kadmin(f"getprinc {self.principal}").splitlines():
            if line.strip().startswith("Key: vno "):
                return int(line.split()[2].rstrip(","))
        raise UnavailableError(f"kadmin.local does not show a key of {self.principal}",
                               hint="create the principal first (addprinc -randkey)")

    def _keytab_for(self, password: str, kvno: int, base: bytes | None = None) -> bytes:
        """A keytab (``base``'s entries, then ``password``'s keys at ``kvno``), built by ktutil in memory."""
        out = os.memfd_create("zt-keytab", os.MFD_CLOEXEC)
        src = None
        try:
            os.write(out, KEYTAB_HEADER)
            os.set_inheritable(out, True)
            script = b""
            fds = [out]
            if base:
                src = os.memfd_create("zt-keytab-base", os.MFD_CLOEXEC)
                os.write(src, base)
                os.set_inheritable(src, True)
                fds.append(src)
                script += b"rkt /proc/self/fd/%d\n" % src
            for enctype in self.ctx.target.get("enctypes", DEFAULT_ENCTYPES):
                script += f"addent -password -p {self.principal} -k {kvno} -e {enctype}\n".encode() + password.encode() + b"\n"
            script += b"wkt /proc/self/fd/%d\nq\n" % out
            proc = self._run([_tool("ktutil")], script, pass_fds=tuple(fds), what="ktutil")
            if proc.returncode != 0 or proc.stderr.strip():
                raise UsageError(f"ktutil could not build the keytab of {self.principal}")
            os.lseek(out, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(out, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(out)
            if src is not None:
                os.close(src)

    def _kinit(self, *, password: str | None = None, keytab: bytes | None = None) -> bool:
        cache = "MEMORY:zt-rotation-test"  # the ticket never leaves kinit's memory
        if keytab is not None:
            fd = os.memfd_create("zt-keytab-test", os.MFD_CLOEXEC)
            try:
                os.write(fd, keytab)
                os.set_inheritable(fd, True)
                proc = self._run([_tool("kinit"), "-k", "-t", f"/proc/self/fd/{fd}", "-c", cache, self.principal], b"",
                                 pass_fds=(fd,), what="kinit")
            finally:
                os.close(fd)
        else:
            proc = self._run([_tool("kinit"), "-c", cache, self.principal], password.encode() + b"\n", what="kinit")
        return proc.returncode == 0

    @staticmethod
    def _password(pending: Secret) -> str:
        return json.loads(pending.reveal_text())["password"]

    # --- the steps ---------------------------------------------------------
    def create_pending(self, current: Secret | None) -> Secret:
        self.kvno()  # the principal exists
        length = int(self.ctx.target.get("length", 40))
        return Secret(json.dumps({"password": "".join(pyrandom.choice(ALPHABET) for _ in range(length))}))

    def apply(self, pending: Secret, current: Secret | None) -> None:
        password = self._password(pending)
        if self._kinit(password=password):
            return  # already set (a run interrupted after apply)
        self._kadmin(f"cpw {self.principal}", stdin=(password + "\n" + password + "\n").encode())

    def test(self, pending: Secret) -> None:
        keytab = self._keytab_for(self._password(pending), self.kvno())
        if not self._kinit(keytab=keytab):
            raise RotationTestFailed(f"a keytab with the new keys of {self.principal} does not get a ticket")

    def final_value(self, pending: Secret, previous: Secret | None) -> Secret:
        base = None
        if previous is not None:
            data = previous.reveal()
            keytab_entries(data)  # a well-formed keytab, else UsageError
            base = data
        return Secret(self._keytab_for(self._password(pending), self.kvno(), base))

    def retired_value(self, current: Secret) -> Secret | None:
        data = current.reveal()
        entries = keytab_entries(data)
        newest = max(kvno for kvno, _ in entries)
        kept = [raw for kvno, raw in entries if kvno == newest]
        if len(kept) == len(entries):
            return None
        return Secret(KEYTAB_HEADER + b"".join(kept))

    def rollback(self, pending: Secret, current: Secret | None) -> None:
        if self._kinit(password=self._password(pending)):
            # The KDC holds the new keys and the old ones are gone: roll forward instead.
            raise UnavailableError(f"the KDC already holds the new keys of {self.principal}; the next run tests again and finishes")

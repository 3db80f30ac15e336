"""``postgres``: the password of a PostgreSQL login role (``ALTER ROLE``).

target:
  host: 127.0.0.1               # port: 5432, dbname: postgres, sslmode: prefer (verify-full off-host)
  user: app                     # the role whose credential is rotated
  admin_secret: pg/admin        # vault secret: the password of admin_user (CREATEROLE or superuser)
  admin_user: postgres
  strategy: single              # single | alternating
  clone_user: app_clone         # alternating only (default: <user>_clone; created if missing, member of <user>)
  length: 32

The vault value is JSON ``{"username": ..., "password": ...}`` (a plain
password is read as the password of ``user``). The password is sent as a SCRAM
verifier computed on this host (libpq ``PQencryptPasswordConn``), so the
plaintext reaches neither the server's statement log nor ``pg_stat_activity``.

``single``: one role; ``apply`` replaces its password, so the previous one
stops working at ``apply``, not at ``retire`` (consumers must re-read the
vault quickly: use ``alternating`` for zero downtime). ``alternating`` (AWS
Secrets Manager's alternating-users strategy): two roles take turns; each
rotation sets a new password on the role that is not current, the current
one keeps working, and ``retire`` (after the grace period) removes the
previous role's password (``PASSWORD NULL``), so a leaked previous
credential stops working too.
"""

from __future__ import annotations

import json
import secrets as pyrandom
import string

from zerotrust_admin.errors import DeniedError, UnavailableError, UsageError
from zerotrust_admin.secret import Secret
from zerotrust_admin.secret_rotation.base import RotationTestFailed, Rotator, require_keys

ALPHABET = string.ascii_letters + string.digits
STRATEGIES = ("single", "alternating")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def credential(value: Secret | None, default_user: str) -> tuple[str, str] | None:
    """(username, password) of a vault value: JSON, or a plain password of ``default_user``."""
    if value is None:
        return None
    text = value.reveal_text()
    try:
        obj = json.loads(text)
    except ValueError:
        return default_user, text
    if isinstance(obj, dict) and isinstance(obj.get("password"), str):
        return str(obj.get("username") or default_user), obj["password"]
    return default_user, text


class PostgresRotator(Rotator):
    kind = "postgres"

    @classmethod
    def check_target(cls, target: dict) -> str | None:
        problem = require_keys(target, "host", "user", "admin_secret")
        if problem:
            return problem
        if target.get("strategy", "single") not in STRATEGIES:
            return f"strategy must be one of {', '.join(STRATEGIES)}"
        if target.get("sslmode", "prefer") not in SSLMODES:
            return f"sslmode must be one of {', '.join(SSLMODES)}"
        port = target.get("port", 5432)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            return "port must be a TCP port number"
        if target.get("strategy") == "alternating" and cls._clone_of(target) == target["user"]:
            return "clone_user must differ from user"
        return None

    def __init__(self, ctx):
        super().__init__(ctx)
        self.keeps_previous = ctx.target.get("strategy", "single") == "alternating"
        self._admin = None

    @staticmethod
    def _clone_of(target: dict) -> str:
        return str(target.get("clone_user") or f"{target['user']}_clone")

    def _credential(self, value: Secret | None) -> tuple[str, str] | None:
        """``credential`` of a vault value, whose role must be one the configuration
        manages (``user``, and ``clone_user`` when alternating): the vault's content
        never chooses which role the admin credential changes (threat model R5)."""
        found = credential(value, str(self.ctx.target["user"]))
        managed = {str(self.ctx.target["user"])} | ({self._clone_of(self.ctx.target)} if self.keeps_previous else set())
        if found is not None and found[0] not in managed:
            raise UsageError(f"{self.where}: the vault value names the role {found[0]!r}, which this rotation does not manage "
                             f"({', '.join(sorted(managed))}); refusing to change it",
                             hint="put the managed role's credential back into the secret (vault put), then run rotate-secrets again")
        return found

    @property
    def where(self) -> str:
        return f"PostgreSQL at {self.ctx.target['host']}:{self.ctx.target.get('port', 5432)}"

    def _connect(self, user: str, password: str):
        import psycopg

        t = self.ctx.target
        return psycopg.connect(host=str(t["host"]), port=int(t.get("port", 5432)), dbname=str(t.get("dbname", "postgres")),
                               user=user, password=password, sslmode=str(t.get("sslmode", "prefer")),
                               connect_timeout=int(t.get("timeout_seconds", 5)), autocommit=True)

    @property
    def admin(self):
        if self._admin is None:
            import psycopg

            secret = self.ctx.admin_credential()
            try:
                self._admin = self._connect(str(self.ctx.target.get("admin_user", "postgres")), secret.reveal_text())
            except psycopg.OperationalError:
                raise UnavailableError(f"{self.where} refused or did not answer the administrator's connection",
                                       hint="check the server, target.host/port and the admin_secret") from None
            finally:
                secret.wipe()
        return self._admin

    def _execute(self, query) -> None:
        import psycopg

        try:
            self.admin.execute(query)
        except psycopg.errors.InsufficientPrivilege:
            raise DeniedError(f"{self.where}: the administrator may not change the role",
                              hint="admin_user needs CREATEROLE (or superuser)") from None
        except psycopg.OperationalError:
            raise UnavailableError(f"{self.where} is unavailable") from None
        except psycopg.Error as exc:
            raise UsageError(f"{self.where} refused the change ({type(exc).__name__})") from None

    def _set_password(self, user: str, password: str | None) -> None:
        from psycopg import sql

        if password is None:
            self._execute(sql.SQL("ALTER ROLE {} WITH PASSWORD NULL").format(sql.Identifier(user)))
            return
        verifier = self.admin.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256").decode("ascii")
        self._execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(verifier)))

    def _role_exists(self, user: str) -> bool:
        return self.admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone() is not None

    # --- the steps ---------------------------------------------------------
    def create_pending(self, current: Secret | None) -> Secret:
        user = str(self.ctx.target["user"])
        username = user
        if self.keeps_previous:
            now = self._credential(current)
            username = self._clone_of(self.ctx.target) if now is None or now[0] == user else user
        password = "".join(pyrandom.choice(ALPHABET) for _ in range(int(self.ctx.target.get("length", 32))))
        return Secret(json.dumps({"username": username, "password": password}, sort_keys=True))

    def apply(self, pending: Secret, current: Secret | None) -> None:
        from psycopg import sql

        username, password = self._credential(pending)
        if not self._role_exists(username):
            if username != self._clone_of(self.ctx.target):
                raise UsageError(f"{self.where}: the role {username!r} does not exist", hint="create it with its privileges first")
            self._execute(sql.SQL("CREATE ROLE {} WITH LOGIN INHERIT IN ROLE {}").format(
                sql.Identifier(username), sql.Identifier(str(self.ctx.target["user"]))))
        self._set_password(username, password)

    def test(self, pending: Secret) -> None:
        import psycopg

        username, password = self._credential(pending)
        try:
            conn = self._connect(username, password)
        except psycopg.OperationalError:
            raise RotationTestFailed(f"the new password of {username!r} does not log in at {self.where}") from None
        try:
            conn.execute("SELECT 1").fetchone()
        finally:
            conn.close()

    def retire(self, previous: Secret, current: Secret) -> None:
        user = str(self.ctx.target["user"])
        before, now = self._credential(previous), self._credential(current)
        if self.keeps_previous and before[0] != now[0] and self._role_exists(before[0]):
            self._set_password(before[0], None)

    def rollback(self, pending: Secret, current: Secret | None) -> None:
        user = str(self.ctx.target["user"])
        new, now = self._credential(pending), self._credential(current)
        if now is not None and now[0] == new[0]:
            self._set_password(now[0], now[1])  # single: the current password back
        elif self._role_exists(new[0]):
            self._set_password(new[0], None)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

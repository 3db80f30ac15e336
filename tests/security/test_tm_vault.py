"""Threat-model rows V2-V6 and the vault half of V1: the vault file against
someone who can write it but holds no key (attacker b).

Every test runs the real CLI on a real installation and edits ``vault.db`` the
way that attacker would: ``sqlite3`` statements (planted triggers, copied-back
rows, edited times and states), ``shutil.copy`` of an older genuine file,
``chmod``. Each asserts the documented exit code AND that the value printed is
never the one the attacker wanted (stdout stays empty on a refusal).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.reliability.helpers import KillSchedule, warm_runtime

INTEGRITY, USAGE = 5, 2


def _db(zt_env) -> Path:
    return Path(zt_env["ZEROTRUST_HOME"]) / "vault.db"


def _sql(zt_env, *statements, params=()) -> None:
    """The attacker's edit: plain sqlite3 on the file, no key."""
    conn = sqlite3.connect(_db(zt_env))
    for i, statement in enumerate(statements):
        conn.execute(statement, params[i] if i < len(params) else ())
    conn.commit()
    conn.close()


def _rows(zt_env, query: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(_db(zt_env))
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def _put(cli, name: str, value: bytes, *extra: str) -> None:
    result = cli("vault", "put", name, *extra, input=value)
    assert result.code == 0, result.err


def _refused(cli, *args: str, code: int = INTEGRITY, forbidden: bytes | None = None, env=None):
    result = cli(*args, env=env, input=b"")
    assert result.code == code, (args, result.code, result.err)
    assert result.out == b"", result.out
    if forbidden is not None:
        assert forbidden not in result.out
    return result


def _snapshot_head(zt_env, name: str) -> tuple:
    return _rows(zt_env, "SELECT * FROM secrets WHERE name = ?", (name,))[0]


def _restore_head(zt_env, row: tuple, *extra: str) -> None:
    marks = ", ".join("?" * len(row))
    _sql(zt_env, "DELETE FROM secrets WHERE name = ?", f"INSERT INTO secrets VALUES ({marks})", *extra, params=[(row[0],), row])


# --- V1 (vault half): what the vault records about its key source is authenticated ---
def test_v1_edited_master_params_that_agrees_with_config_refused(cli, initialized, zt_env):
    _put(cli, "app/token", b"genuine")
    # The same JSON object written differently: it agrees with the configuration (and
    # passes the key-source check), so only the meta MAC can tell it was edited.
    assert _rows(zt_env, "SELECT value FROM meta WHERE key = 'master_params'") == [("{}",)]
    _sql(zt_env, "UPDATE meta SET value = ? WHERE key = 'master_params'", params=[("{ }",)])
    result = _refused(cli, "vault", "get", "app/token")
    assert "meta was edited" in result.err


def test_v1_edited_master_created_refused(cli, initialized, zt_env):
    _put(cli, "app/token", b"genuine")
    _sql(zt_env, "UPDATE meta SET value = '2099-01-01T00:00:00.000000Z' WHERE key = 'master_created'")
    _refused(cli, "vault", "get", "app/token")
    _refused(cli, "keys", "status")
    _refused(cli, "rotate-keys", "--dry-run")


# --- V2: planted schema objects ------------------------------------------------------
def test_v2_planted_trigger_reverting_every_new_version_refused(cli, initialized, zt_env):
    _put(cli, "db/password", b"old-known-to-attacker")
    # The trigger: every new version is reverted to the old head, re-using OLD.head_mac.
    _sql(zt_env, """CREATE TRIGGER keep_old AFTER UPDATE OF current_version ON secrets BEGIN
                        UPDATE secrets SET current_version = OLD.current_version, updated = OLD.updated, head_mac = OLD.head_mac
                        WHERE name = NEW.name;
                        DELETE FROM versions WHERE name = NEW.name AND version = NEW.current_version;
                    END""")
    result = cli("vault", "put", "db/password", input=b"new-rotated-value")
    assert result.code == INTEGRITY and "trigger 'keep_old'" in result.err, result.err
    result = _refused(cli, "vault", "get", "db/password", forbidden=b"old-known-to-attacker")
    assert "trigger 'keep_old'" in result.err and "not part of the vault format" in result.err
    # Nothing was written while the trigger was there.
    assert _rows(zt_env, "SELECT MAX(version) FROM versions WHERE name = 'db/password'") == [(1,)]


def test_v2_planted_trigger_making_destroy_a_noop_refused(cli, initialized, zt_env):
    _put(cli, "app/leaked", b"must-be-destroyed")
    _sql(zt_env, "CREATE TRIGGER keep_versions BEFORE DELETE ON versions BEGIN SELECT RAISE(IGNORE); END")
    result = cli("vault", "delete", "app/leaked", "--destroy", "--yes")
    assert result.code == INTEGRITY and "keep_versions" in result.err, result.err
    _refused(cli, "vault", "get", "app/leaked", forbidden=b"must-be-destroyed")


@pytest.mark.parametrize("plant, named", [
    ("CREATE VIEW secrets_view AS SELECT * FROM secrets", "view 'secrets_view'"),
    ("CREATE INDEX by_sensitive ON secrets (sensitive)", "index 'by_sensitive'"),
    ("CREATE TABLE stash (k TEXT, v BLOB)", "table 'stash'"),
    ("ANALYZE", "table 'sqlite_stat1'"),  # planner statistics steer which index a lookup uses
])
def test_v2_planted_view_index_table_refused(cli, initialized, zt_env, plant, named):
    _put(cli, "app/token", b"genuine")
    _sql(zt_env, plant)
    result = _refused(cli, "vault", "get", "app/token")
    assert named in result.err, result.err


def test_v2_altered_create_statement_refused(cli, initialized, zt_env):
    _put(cli, "app/token", b"genuine")
    # Drop the CHECK on deks.state by editing the stored CREATE text (writable_schema).
    conn = sqlite3.connect(_db(zt_env))
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = replace(sql, \"CHECK (state IN ('active', 'retired'))\", '') WHERE name = 'deks'")
    conn.commit()
    conn.close()
    result = _refused(cli, "vault", "get", "app/token")
    assert "altered table 'deks'" in result.err, result.err


def test_v2_connections_do_not_trust_the_schema(initialized, zt_env):
    from tests.reliability.helpers import open_vault

    with open_vault(zt_env) as vault:
        assert vault._conn.execute("PRAGMA trusted_schema").fetchone() == (0,)


def test_v2_trigger_planted_while_open_stops_the_write(cli, initialized, zt_env):
    """A long-running process: the schema is re-checked under the write lock."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError

    _put(cli, "db/password", b"v1")
    with open_vault(zt_env) as vault:
        _sql(zt_env, "CREATE TRIGGER late AFTER INSERT ON versions BEGIN DELETE FROM versions WHERE rowid < 0; END")
        with pytest.raises(IntegrityError, match="trigger 'late'"):
            vault.put("db/password", b"v2")
    assert _rows(zt_env, "SELECT MAX(version) FROM versions WHERE name = 'db/password'") == [(1,)]


@pytest.mark.parametrize("trigger, write", [
    ("CREATE TRIGGER t AFTER UPDATE ON secrets BEGIN UPDATE secrets SET current_version = OLD.current_version, head_mac = OLD.head_mac WHERE name = NEW.name; END",
     lambda v: v.put("db/password", b"v2")),
    ("CREATE TRIGGER t AFTER UPDATE ON secrets BEGIN UPDATE secrets SET deleted_at = NULL, head_mac = OLD.head_mac WHERE name = NEW.name; END",
     lambda v: v.delete("db/password")),
    ("CREATE TRIGGER t BEFORE DELETE ON versions BEGIN SELECT RAISE(IGNORE); END", lambda v: v.destroy("db/password")),
])
def test_v2_write_reads_back_before_commit(cli, initialized, zt_env, monkeypatch, trigger, write):
    """The second line of defence, with the schema check switched off: what a
    write reads back inside its transaction must be what it wrote, else it rolls back."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.vault import vault as vault_module

    _put(cli, "db/password", b"v1")
    _sql(zt_env, trigger)
    monkeypatch.setattr(vault_module, "schema_problem", lambda actual, version: None)
    monkeypatch.setattr(vault_module, "_read_format", lambda conn, path: (2, dict(conn.execute("SELECT key, value FROM meta").fetchall())))
    before = _rows(zt_env, "SELECT * FROM secrets"), _rows(zt_env, "SELECT name, version FROM versions")
    with open_vault(zt_env) as vault:
        with pytest.raises(IntegrityError, match="did not keep|kept rows"):
            write(vault)
    assert (_rows(zt_env, "SELECT * FROM secrets"), _rows(zt_env, "SELECT name, version FROM versions")) == before


_PLANT_EMPTY_INDEX = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("pragma wal_checkpoint(TRUNCATE)")
c.execute("create table t2(dek_id TEXT, name TEXT, version INTEGER)"); c.execute("create index i2 on t2(dek_id)"); c.commit()
R = c.execute("select rootpage from sqlite_master where name='i2'").fetchone()[0]; sv = c.execute("pragma schema_version").fetchone()[0]
c.execute("pragma writable_schema=ON")
if sys.argv[2] == "drop-orphans": c.execute("delete from sqlite_master where name in ('t2','i2')")
else: c.execute("update sqlite_master set rootpage = (select rootpage from sqlite_master where name='versions_by_dek') where name='i2'")
c.execute("update sqlite_master set rootpage=? where name='versions_by_dek'", (R,)); c.execute(f"pragma schema_version={sv+1}"); c.commit()
"""


@pytest.mark.parametrize("variant", ["drop-orphans", "swap-roots"])
def test_v2_planted_index_root_page_does_not_destroy_secrets_on_rotation(cli, initialized, zt_env, variant):
    """F5 (r6_rootpage.sh): versions_by_dek's root page pointed at an empty index
    (name and SQL text unchanged). `rotate-keys --dek` used to re-encrypt 0
    versions, then purge the old data key: every secret lost, exit 0. Now the
    decisions read the table (NOT INDEXED) and maintenance runs quick_check and
    compares each index with its table first: exit 5, nothing lost."""
    import subprocess
    import sys

    _put(cli, "app/a", b"va")
    _put(cli, "app/b", b"vb")
    subprocess.run([sys.executable, "-c", _PLANT_EMPTY_INDEX, str(_db(zt_env)), variant], check=True)
    deks_before = _rows(zt_env, "SELECT id FROM deks NOT INDEXED")
    result = cli("rotate-keys", "--dek")
    assert result.code == INTEGRITY, (result.code, result.err)
    assert _rows(zt_env, "SELECT id FROM deks NOT INDEXED") == deks_before
    _refused(cli, "vault", "delete", "app/a", "--destroy", "--yes")
    assert {r[0] for r in _rows(zt_env, "SELECT DISTINCT dek_id FROM versions NOT INDEXED")} <= {r[0] for r in deks_before}


# --- V3: single-secret rollback ------------------------------------------------------
def test_v3_older_secrets_row_copied_back_refused(cli, initialized, zt_env):
    _put(cli, "db/password", b"old-compromised")
    old = _snapshot_head(zt_env, "db/password")
    _put(cli, "db/password", b"new-after-incident")
    _restore_head(zt_env, old, "DELETE FROM versions WHERE name = 'db/password' AND version = 2")
    result = _refused(cli, "vault", "get", "db/password", forbidden=b"old-compromised")
    assert "rolled back" in result.err
    _refused(cli, "vault", "list")


@pytest.mark.parametrize("rotation", ["--dek", "--master"])
def test_v3_rollback_across_key_rotation_refused(cli, initialized, zt_env, rotation):
    _put(cli, "db/password", b"old-compromised")
    old = _snapshot_head(zt_env, "db/password")
    _put(cli, "db/password", b"new-after-incident")
    result = cli("rotate-keys", rotation)
    assert result.code == 0, result.err
    _restore_head(zt_env, old, "DELETE FROM versions WHERE name = 'db/password' AND version = 2")
    _refused(cli, "vault", "get", "db/password", forbidden=b"old-compromised")


def test_v3_older_versions_row_copied_back_refused(cli, initialized, zt_env):
    _put(cli, "db/password", b"first")
    _put(cli, "db/password", b"second")
    old_v1 = _rows(zt_env, "SELECT * FROM versions WHERE name = 'db/password' AND version = 1")[0]
    assert cli("rotate-keys", "--dek").code == 0
    # Put the pre-rotation row (old data key id, old MAC) back in place of the re-encrypted one.
    marks = ", ".join("?" * len(old_v1))
    _sql(zt_env, "DELETE FROM versions WHERE name = 'db/password' AND version = 1", f"INSERT INTO versions VALUES ({marks})", params=[(), old_v1])
    _refused(cli, "vault", "get", "db/password", "--version", "1")
    assert cli("vault", "get", "db/password").out == b"second"


def test_v3_rollback_while_a_process_has_the_vault_open_is_not_blessed(cli, initialized, zt_env):
    """A long-running process's next write re-checks the commitment (another connection
    committed meanwhile) and the bucket of every row it changes before changing it;
    an unrelated write re-digests only its own bucket, so the rolled-back row's bucket
    keeps its genuine digest: never blessed."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.vault import format as fmt

    _put(cli, "db/password", b"old-compromised")
    old = _snapshot_head(zt_env, "db/password")
    _put(cli, "db/password", b"new-after-incident")
    vault_id = dict(_rows(zt_env, "SELECT key, value FROM meta"))["vault_id"]
    target = fmt.bucket_of(vault_id, "db/password")
    neighbour = next(f"app/n{i}" for i in range(10_000) if fmt.bucket_of(vault_id, f"app/n{i}") == target)
    other = next(f"app/o{i}" for i in range(10_000) if fmt.bucket_of(vault_id, f"app/o{i}") != target)
    with open_vault(zt_env) as vault:
        _restore_head(zt_env, old, "DELETE FROM versions WHERE name = 'db/password' AND version = 2")
        with pytest.raises(IntegrityError, match="rolled back"):
            vault.put("db/password", b"a write to the rolled-back secret")
        with pytest.raises(IntegrityError, match="rolled back"):
            vault.put(neighbour, b"a write to its bucket")
        vault.put(other, b"unrelated write")  # another bucket: allowed, and it blesses nothing
    _refused(cli, "vault", "get", "db/password", forbidden=b"old-compromised")
    _refused(cli, "vault", "get", neighbour)
    assert cli("vault", "get", other).out == b"unrelated write"


def test_v3_soft_deleted_secret_resurrected_refused(cli, initialized, zt_env):
    _put(cli, "api/revoked", b"revoked-credential")
    live = _snapshot_head(zt_env, "api/revoked")
    assert cli("vault", "delete", "api/revoked", "--yes").code == 0
    _restore_head(zt_env, live)
    _refused(cli, "vault", "get", "api/revoked", forbidden=b"revoked-credential")


def test_v3_sensitive_flag_dropped_refused(cli, initialized, zt_env):
    _put(cli, "krb/keytab", b"plain-v1")
    before = _snapshot_head(zt_env, "krb/keytab")
    _put(cli, "krb/keytab", b"needs-mfa-v2", "--sensitive")
    # Edit in place: the head MAC fails.
    _sql(zt_env, "UPDATE secrets SET sensitive = 0 WHERE name = 'krb/keytab'")
    _refused(cli, "vault", "get", "krb/keytab", forbidden=b"needs-mfa-v2")
    # Or copy the older, genuine, non-sensitive head back with its version: the commitment fails.
    _restore_head(zt_env, before, "DELETE FROM versions WHERE name = 'krb/keytab' AND version = 2")
    _refused(cli, "vault", "get", "krb/keytab", forbidden=b"plain-v1")


def test_v3_destroyed_secret_rows_reinserted_refused(cli, initialized, zt_env):
    _put(cli, "app/old", b"destroyed-value")
    head = _snapshot_head(zt_env, "app/old")
    versions = _rows(zt_env, "SELECT * FROM versions WHERE name = 'app/old'")
    assert cli("vault", "delete", "app/old", "--destroy", "--yes").code == 0
    marks_h, marks_v = ", ".join("?" * len(head)), ", ".join("?" * len(versions[0]))
    _sql(zt_env, f"INSERT INTO secrets VALUES ({marks_h})", f"INSERT INTO versions VALUES ({marks_v})", params=[head, versions[0]])
    _refused(cli, "vault", "get", "app/old", forbidden=b"destroyed-value")


def test_v3_destroyed_secret_version_does_not_fit_a_new_incarnation(cli, initialized, zt_env):
    _put(cli, "app/old", b"destroyed-value")
    old_row = _rows(zt_env, "SELECT * FROM versions WHERE name = 'app/old'")[0]
    assert cli("vault", "delete", "app/old", "--destroy", "--yes").code == 0
    _put(cli, "app/old", b"fresh-value")
    assert _rows(zt_env, "SELECT incarnation FROM secrets WHERE name = 'app/old'")[0][0] != ""
    marks = ", ".join("?" * len(old_row))
    _sql(zt_env, "DELETE FROM versions WHERE name = 'app/old'", f"INSERT INTO versions VALUES ({marks})", params=[(), old_row])
    result = _refused(cli, "vault", "get", "app/old", forbidden=b"destroyed-value")
    assert "destroyed secret" in result.err


# --- V3 at scale: every path that serves or lists a secret checks its bucket first ---------
# The commitment covers 256 bucket digests; open checks only those (O(1) in the number
# of secrets), so a rolled-back row is caught by the path that serves it. One test per
# read path, each on a vault of 2,000 secrets with one row rolled back.
BULK = 2_000


@pytest.fixture
def rolled_back(cli, initialized, zt_env, tmp_path):
    """2,000 secrets, then db/password rolled back to its older genuine head
    (version 2 deleted): what the attacker leaves. Returns the old value."""
    env_file = tmp_path / "bulk.env"
    env_file.write_text("".join(f"bulk/s{i:04d}=value-{i}\n" for i in range(BULK)))
    assert cli("vault", "import", str(env_file)).code == 0
    _put(cli, "db/password", b"old-compromised")
    old = _snapshot_head(zt_env, "db/password")
    _put(cli, "db/password", b"new-after-incident")
    _restore_head(zt_env, old, "DELETE FROM versions WHERE name = 'db/password' AND version = 2")
    return b"old-compromised"


def test_v3_rollback_among_2000_refused_by_get(cli, rolled_back):
    result = _refused(cli, "vault", "get", "db/password", forbidden=rolled_back)
    assert "rolled back, resurrected or removed" in result.err
    assert cli("vault", "get", "bulk/s0001").code in (0, INTEGRITY)  # another bucket is served unless it is the same one


def test_v3_rollback_among_2000_refused_by_get_version(cli, rolled_back):
    _refused(cli, "vault", "get", "db/password", "--version", "1", forbidden=rolled_back)
    _refused(cli, "vault", "get", "db/password", "--json", forbidden=rolled_back)


def test_v3_rollback_among_2000_refused_by_history(cli, rolled_back):
    _refused(cli, "vault", "history", "db/password")
    _refused(cli, "vault", "history", "db/password", "--json")


def test_v3_rollback_among_2000_refused_by_list(cli, rolled_back):
    _refused(cli, "vault", "list")
    _refused(cli, "vault", "list", "--deleted")
    # A prefix that does not even include the secret: a removed or rolled-back row
    # can be anywhere, so a list checks every bucket.
    _refused(cli, "vault", "list", "bulk/")


def test_v3_rollback_among_2000_refused_by_export(cli, rolled_back):
    result = _refused(cli, "vault", "export", "--yes", forbidden=rolled_back)
    assert b"value-1" not in result.out


def test_v3_rollback_among_2000_refused_by_backup(cli, rolled_back, zt_env, tmp_path):
    out = tmp_path / "b.ztb"
    _refused(cli, "vault", "backup", "--output", str(out), env={"ZEROTRUST_BACKUP_PASSPHRASE": "correct horse battery staple"})
    assert not out.exists()


def test_v3_rollback_among_2000_refused_by_dump_records(rolled_back, zt_env):
    """The backup's record stream itself (the library call), not only the listing before it."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError

    with open_vault(zt_env) as vault:
        with pytest.raises(IntegrityError, match="rolled back"):
            next(vault.dump_records())


def test_v3_rollback_among_2000_refused_by_import_comparison(cli, rolled_back, zt_env, tmp_path):
    """The import compares with the current value (a read): refused, and nothing is written."""
    before = _rows(zt_env, "SELECT COUNT(*) FROM versions")
    src = tmp_path / "again.env"
    src.write_text("db/password=old-compromised\nnew/one=x\n")
    result = _refused(cli, "vault", "import", str(src))
    assert "rolled back" in result.err
    assert _rows(zt_env, "SELECT COUNT(*) FROM versions") == before


def test_v3_rollback_among_2000_refused_by_import_without_comparison(rolled_back, zt_env):
    """compare=False (a write-only principal): nothing is read, yet the bucket is checked before the write."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError

    with open_vault(zt_env) as vault:
        with pytest.raises(IntegrityError, match="rolled back"):
            vault.import_many([("db/password", b"overwrite")], compare=False)
    assert _rows(zt_env, "SELECT MAX(version) FROM versions WHERE name = 'db/password'") == [(1,)]


def test_v3_rollback_among_2000_refused_by_info(rolled_back, zt_env):
    """``info`` decides MFA (the access guard reads ``sensitive`` from it): authenticated and checked."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError

    with open_vault(zt_env) as vault:
        with pytest.raises(IntegrityError, match="rolled back"):
            vault.info("db/password")


def test_v3_rollback_among_2000_refused_by_python_api(rolled_back, zt_env):
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_kerberos import SecretManager

    with SecretManager(environ=dict(zt_env)) as manager:
        with pytest.raises(IntegrityError) as caught:
            manager.get_secret("db/password")
    assert caught.value.exit_code == INTEGRITY and "old-compromised" not in str(caught.value)


def test_v3_rollback_among_2000_refused_by_local_provider(rolled_back, zt_env):
    """providers/local.py: every read method of the integrated-vault provider."""
    from tests.reliability.helpers import open_vault
    from zerotrust_admin.errors import IntegrityError
    from zerotrust_admin.providers.base import ProviderContext
    from zerotrust_admin.providers.local import LocalProvider

    with open_vault(zt_env) as vault:
        provider = LocalProvider(ProviderContext(kind="local", settings={}, config=None, open_local_vault=lambda: vault))
        for call in (lambda: provider.get("db/password"), lambda: provider.get("db/password", 1), lambda: provider.info("db/password"),
                     lambda: provider.history("db/password"), lambda: list(provider.list("")), lambda: list(provider.export_all("")),
                     lambda: provider.put("db/password", b"x", cas=1)):
            with pytest.raises(IntegrityError, match="rolled back"):
                call()


def test_v3_removed_secret_among_2000_is_exit_5_not_not_found(cli, initialized, zt_env, tmp_path):
    env_file = tmp_path / "bulk.env"
    env_file.write_text("".join(f"bulk/s{i:04d}=value-{i}\n" for i in range(BULK)))
    assert cli("vault", "import", str(env_file)).code == 0
    _sql(zt_env, "DELETE FROM versions WHERE name = 'bulk/s0042'", "DELETE FROM secrets WHERE name = 'bulk/s0042'")
    result = _refused(cli, "vault", "get", "bulk/s0042")
    assert "removed" in result.err


def test_v3_destroyed_secret_reinserted_outside_its_bucket_refused(cli, initialized, zt_env):
    """The rows of a destroyed secret put back with another bucket number (so its own
    bucket's digest still matches): the row served must be the one in its bucket."""
    _put(cli, "app/old", b"destroyed-value")
    head = _snapshot_head(zt_env, "app/old")
    versions = _rows(zt_env, "SELECT * FROM versions WHERE name = 'app/old'")
    assert cli("vault", "delete", "app/old", "--destroy", "--yes").code == 0
    columns = [r[1] for r in _rows(zt_env, "PRAGMA table_info(secrets)")]
    head = list(head)
    head[columns.index("bucket")] = (head[columns.index("bucket")] + 1) % 256
    marks_h, marks_v = ", ".join("?" * len(head)), ", ".join("?" * len(versions[0]))
    _sql(zt_env, f"INSERT INTO secrets VALUES ({marks_h})", f"INSERT INTO versions VALUES ({marks_v})", params=[head, versions[0]])
    result = _refused(cli, "vault", "get", "app/old", forbidden=b"destroyed-value")
    assert "outside its bucket" in result.err
    _refused(cli, "vault", "list")


def test_v3_edited_bucket_digest_and_commitment_refused_at_open(cli, initialized, zt_env):
    """The stored digests are trusted only under the commitment (MAC under the head key)."""
    _put(cli, "db/password", b"genuine")
    _sql(zt_env, "UPDATE buckets SET digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'")
    result = _refused(cli, "vault", "get", "db/password")
    assert "does not match its commitment" in result.err
    _refused(cli, "vault", "list")


def test_v3_open_does_not_read_every_head(initialized, zt_env, cli, tmp_path, monkeypatch):
    """O(1) at open: the heads of other buckets are not read by open + get."""
    from tests.reliability.helpers import open_vault

    env_file = tmp_path / "bulk.env"
    env_file.write_text("".join(f"bulk/s{i:04d}=value-{i}\n" for i in range(BULK)))
    assert cli("vault", "import", str(env_file)).code == 0
    from zerotrust_admin.vault import vault as vault_module

    statements: list[str] = []
    real_connect = vault_module._connect

    def traced(path):
        conn = real_connect(path)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(vault_module, "_connect", traced)
    with open_vault(zt_env) as vault:
        vault.get("bulk/s0007")[0].wipe()
    heads = [s for s in statements if "FROM secrets" in s]
    assert heads and all("WHERE" in s for s in heads), heads  # by name or by bucket, never the whole table


def test_v3_racing_rollback_writer_never_gets_a_wrong_value_served(cli, initialized, zt_env):
    """F7 (r5_toctou.sh): a writer thread flips prod/db between its genuine new rows
    and its old rows while `vault get` runs again and again: every exit 0 prints
    the genuine value; the rolled-back state is exit 5, never served."""
    import threading
    import time

    _put(cli, "prod/db", b"old")
    old_head = _snapshot_head(zt_env, "prod/db")
    _put(cli, "prod/db", b"new")
    new_head = _snapshot_head(zt_env, "prod/db")
    v2 = _rows(zt_env, "SELECT * FROM versions WHERE name = 'prod/db' AND version = 2")[0]
    stop = threading.Event()
    flips = [0]

    def attacker():
        conn = sqlite3.connect(_db(zt_env), timeout=30, isolation_level=None)
        heads = ", ".join("?" * len(new_head))
        while not stop.is_set():
            for head, with_v2 in ((old_head, False), (new_head, True)):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM secrets WHERE name = 'prod/db'")
                conn.execute(f"INSERT INTO secrets VALUES ({heads})", head)
                conn.execute("DELETE FROM versions WHERE name = 'prod/db' AND version = 2")
                if with_v2:
                    conn.execute(f"INSERT INTO versions VALUES ({', '.join('?' * len(v2))})", v2)
                conn.execute("COMMIT")
                flips[0] += 1
                time.sleep(0.003)
        conn.close()

    thread = threading.Thread(target=attacker)
    thread.start()
    served = {}
    try:
        for _ in range(25):
            result = cli("vault", "get", "prod/db")
            served[result.code] = served.get(result.code, 0) + 1
            assert result.code in (0, INTEGRITY), (result.code, result.err)
            assert result.code != 0 or result.out == b"new", result.out
    finally:
        stop.set()
        thread.join()
    assert flips[0] > 50 and served.get(INTEGRITY, 0) > 0, (flips, served)


def test_v3_renamed_mfa_seed_rows_refused_not_read_as_unenrolled(cli, initialized, zt_env):
    """F2 (r4_mfa.sh): the MFA seed's rows renamed in place (same bucket column):
    `mfa status` / `mfa enroll` must not read the seed as absent and re-enrol without a code."""
    assert cli("mfa", "enroll").code == 0
    _put(cli, "prod/db", b"TOPSECRET", "--sensitive")
    _sql(zt_env, "UPDATE secrets SET name = name || '0' WHERE name LIKE '\\_zerotrust/mfa/%' ESCAPE '\\'",
         "UPDATE versions SET name = name || '0' WHERE name LIKE '\\_zerotrust/mfa/%' ESCAPE '\\'")
    assert _rows(zt_env, "SELECT count(*) FROM secrets WHERE name LIKE '%0' AND name LIKE '\\_zerotrust/mfa/%' ESCAPE '\\'") == [(1,)]
    _refused(cli, "mfa", "status")
    _refused(cli, "mfa", "enroll", "--yes")
    _refused(cli, "vault", "get", "prod/db", "--otp-stdin", forbidden=b"TOPSECRET")


@pytest.mark.parametrize("cast", ["CAST(name AS BLOB)", "name || char(0) || 'x'"])
def test_v3_name_made_blob_or_nul_refused_not_hidden(cli, initialized, zt_env, cast):
    """F2/F10 (r10_hide.sh part 2): a name turned into a BLOB (or given a NUL tail)
    must not make the secret silently vanish from list/get: exit 5."""
    _put(cli, "app/a", b"v")
    _put(cli, "zz/z", b"v")
    _sql(zt_env, f"UPDATE secrets SET name = {cast} WHERE name = 'zz/z'", f"UPDATE versions SET name = {cast} WHERE name = 'zz/z'")
    _refused(cli, "vault", "list")
    _refused(cli, "vault", "get", "zz/z")


def test_v3_bucket_rows_merged_into_one_name_refused(cli, initialized, zt_env):
    """A bucket's digest input must not let two rows pose as one: a single row named
    "a NUL mac-a LF b" with b's MAC hides both a and b under the old NUL/LF joining."""
    import hashlib

    from zerotrust_admin.vault import format as fmt

    vault_id = _rows(zt_env, "SELECT value FROM meta WHERE key = 'vault_id'")[0][0]
    names = [f"app/k{i}" for i in range(600)]
    by_bucket: dict[int, list[str]] = {}
    for name in names:
        by_bucket.setdefault(fmt.bucket_of(vault_id, name), []).append(name)
    pair = next(sorted(v)[:2] for v in by_bucket.values() if len(v) >= 2)
    for name in pair:
        _put(cli, name, b"v-" + name.encode())
    (a, mac_a, inc, bucket), (b, mac_b) = (_rows(zt_env, "SELECT name, head_mac, incarnation, bucket FROM secrets WHERE name = ?", (pair[0],))[0],
                                           _rows(zt_env, "SELECT name, head_mac FROM secrets WHERE name = ?", (pair[1],))[0])
    merged = f"{a}\x00{mac_a}\n{b}"
    _sql(zt_env, "DELETE FROM secrets WHERE name = ?", "UPDATE secrets SET name = ? WHERE name = ?", params=[(a,), (merged, b)])
    assert hashlib.sha256(f"{merged}\x00{mac_b}\n".encode()).digest() == hashlib.sha256(f"{a}\x00{mac_a}\n{b}\x00{mac_b}\n".encode()).digest()
    _refused(cli, "vault", "get", a)
    _refused(cli, "vault", "list")


def test_v3_soft_delete_by_empty_deleted_at_refused(cli, initialized, zt_env):
    """F10 (r10_hide.sh): deleted_at = '' instead of NULL must not authenticate
    (the head MAC tells NULL from empty): exit 5, not 'deleted (recoverable)'."""
    _put(cli, "app/a", b"v")
    _sql(zt_env, "UPDATE secrets SET deleted_at = '' WHERE name = 'app/a'")
    result = _refused(cli, "vault", "get", "app/a")
    assert "does not authenticate" in result.err, result.err
    _refused(cli, "vault", "list")


def test_v5_meta_record_folded_into_another_with_nul_refused(cli, initialized, zt_env):
    """F11 (r11_metanul.sh): dek_rotated folded into created with NUL bytes and
    its row deleted: the meta MAC input is framed, so it no longer verifies."""
    _put(cli, "app/x", b"v")
    assert cli("rotate-keys", "--dek").code == 0
    _sql(zt_env, "UPDATE meta SET value = value || char(0) || 'dek_rotated' || char(0) || (SELECT value FROM meta WHERE key = 'dek_rotated') WHERE key = 'created'",
         "DELETE FROM meta WHERE key = 'dek_rotated'")
    _refused(cli, "vault", "get", "app/x")


# --- V4: whole-file replay --------------------------------------------------------------
def test_v4_older_copy_of_the_whole_vault_refused(cli, initialized, zt_env, tmp_path):
    _put(cli, "db/password", b"old-compromised")
    shutil.copy2(_db(zt_env), tmp_path / "old.db")
    _put(cli, "db/password", b"new-after-incident")
    shutil.copy2(_db(zt_env), tmp_path / "current.db")
    shutil.copy2(tmp_path / "old.db", _db(zt_env))
    result = _refused(cli, "vault", "get", "db/password", forbidden=b"old-compromised")
    assert "replaced by an older copy" in result.err and "audit log confirmed generation" in result.err
    # A copy taken after the last write is the vault as it is: it opens.
    shutil.copy2(tmp_path / "current.db", _db(zt_env))
    result = cli("vault", "get", "db/password")
    assert result.code == 0 and result.out == b"new-after-incident", result.err


def test_v4_every_write_audit_record_carries_the_commitment(cli, initialized, zt_env):
    import json

    _put(cli, "db/password", b"one")
    assert cli("vault", "delete", "db/password", "--yes").code == 0
    assert cli("vault", "undelete", "db/password").code == 0
    assert cli("vault", "import", "-", "--format", "json", input=b'{"a/b": "x"}').code == 0
    assert cli("vault", "delete", "a/b", "--destroy", "--yes").code == 0
    records = [json.loads(line) for line in (Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").read_text().splitlines()]
    writes = [r for r in records if r.get("event") == "secret_access" and r.get("action") in ("write", "delete", "undelete", "import", "destroy") and r["success"]]
    assert len(writes) == 5
    generations = [w["details"]["vault"]["generation"] for w in writes]
    assert generations == sorted(generations) and len(set(generations)) == 5
    meta = dict(_rows(zt_env, "SELECT key, value FROM meta"))
    assert writes[-1]["details"]["vault"] == {"id": meta["vault_id"], "generation": int(meta["generation"]), "commit": meta["commit"]}


@pytest.mark.parametrize("kind", ["--dek", "--master", "--session"])
def test_v4_key_rotation_audit_records_carry_the_commitment(cli, initialized, zt_env, kind):
    import json

    _put(cli, "db/password", b"one")
    assert cli("rotate-keys", kind).code == 0
    records = [json.loads(line) for line in (Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").read_text().splitlines()]
    rotation = [r for r in records if r.get("event") == "key_rotation" and r.get("action") == "rotate" and r["success"]][-1]
    meta = dict(_rows(zt_env, "SELECT key, value FROM meta"))
    assert rotation["details"]["vault"] == {"id": meta["vault_id"], "generation": int(meta["generation"]), "commit": meta["commit"]}


@pytest.mark.parametrize("kind", ["--dek", "--session"])
def test_v4_a_key_rotation_killed_after_its_commit_is_not_undone_silently(cli, initialized, zt_env, tmp_path, kind):
    """c3: every write transaction carries a record with the generation before its
    COMMIT (a re-wrap or purge without a record of its own gets a vault_commit
    record), so a rotation killed before its confirmation, followed by the older
    vault.db copied back, is exit 5 ("interrupted")."""
    import subprocess
    import sys

    _put(cli, "db/password", b"one")
    shutil.copy2(_db(zt_env), tmp_path / "pre.db")
    code = ("import os, sys; sys.argv = ['zerotrust-admin', 'rotate-keys', '%s']\n"
            "import zerotrust_admin.audit.log as L\n"
            "L.AuditLog.confirm_vault = lambda *a, **k: os._exit(137)\n"
            "from zerotrust_admin.cli.entry import main; main()\n") % kind
    proc = subprocess.run([sys.executable, "-c", code], env=zt_env, capture_output=True, timeout=60)
    assert proc.returncode == 137, proc.stderr
    shutil.copy2(tmp_path / "pre.db", _db(zt_env))
    for suffix in ("-wal", "-shm"):
        Path(str(_db(zt_env)) + suffix).unlink(missing_ok=True)
    result = _refused(cli, "vault", "get", "db/password", forbidden=b"one")
    assert "interrupted" in result.err, result.err


def test_v4_crash_before_commit_never_trips_the_floor(cli, initialized, zt_env):
    """SIGKILL `vault put` at random points: the floor moves only after COMMIT, so
    a kill never makes the vault look replaced. A kill between the put's audit
    record and its COMMIT (the audit log's pending generation is not in the vault)
    is exit 5 "interrupted" until `vault recover --interrupted --yes`; then the
    value is the previous one. Every other kill leaves a vault that opens."""
    env = dict(zt_env)
    rng = random.Random(12_2026)
    runtime = warm_runtime(env, ["vault", "put", "crash/warm"], b"w")
    schedule = KillSchedule(rng, runtime, int(os.environ.get("ZT_TM_V4_KILLS", "24")))
    values: dict[str, bytes] = {}
    for i, delay in enumerate(schedule):
        name, value = f"crash/k{i % 3}", f"value-{i}".encode()
        schedule.run(env, ["vault", "put", name], delay, value)
        result = cli("vault", "get", "crash/warm")
        if result.code == INTEGRITY and "it was interrupted" in result.err:
            schedule.interrupted += 1
            assert result.out == b""
            recovered = cli("vault", "recover", "--interrupted", "--yes")
            assert recovered.code == 0, recovered.err
            result = cli("vault", "get", "crash/warm")
        assert result.code == 0 and result.out == b"w", (i, delay, result.err)
        got = cli("vault", "get", name)
        assert got.out in (value, values.get(name)) or (got.code == 3 and name not in values), (i, got.code, got.err)
        if got.code == 0:
            values[name] = got.out
    assert schedule.killed >= 5, schedule.killed


def test_v4_vault_and_key_swapped_for_another_installations_pair_refused(cli, initialized, zt_env, tmp_path):
    """F1 (r1_swap.sh): vault.db AND master.key replaced by a pair made by `init`
    elsewhere: the audit log records other vault ids but not this one: exit 5."""
    import subprocess
    import sys

    _put(cli, "app/db", b"genuine")
    other = dict(zt_env, ZEROTRUST_HOME=str(tmp_path / "attacker-home"), HOME=str(tmp_path / "attacker-userhome"))
    for args, value in ((["init"], b""), (["vault", "put", "app/db"], b"attacker")):
        proc = subprocess.run([sys.executable, "-m", "zerotrust_admin", *args], input=value, capture_output=True, env=other, timeout=60)
        assert proc.returncode == 0, proc.stderr
    home = Path(zt_env["ZEROTRUST_HOME"])
    for name in ("vault.db", "master.key"):
        shutil.copy2(tmp_path / "attacker-home" / name, home / name)
    for name in ("vault.db-wal", "vault.db-shm"):
        (home / name).unlink(missing_ok=True)
    for args in (["vault", "get", "app/db"], ["vault", "list"]):
        result = _refused(cli, *args, forbidden=b"attacker")
        assert "not the vault this audit log records" in result.err, result.err
    result = cli("vault", "put", "app/new", input=b"x")
    assert result.code == INTEGRITY, result.err


# The audit side refuses by itself where what is left of the trail says it was
# removed (A4/A5, with its own reason); the vault's binding decides where nothing is left.
@pytest.mark.parametrize("removed, reason", [
    (("audit.log", "audit.log.head"), "refusing to start a new log"),                # r3_dellog.sh: the checkpoints remain
    (("audit.log", "audit.log.head", "audit.log.checkpoints"), "refusing to start a new log under the same key"),  # only the key is left
    (("audit.log.head", "audit.log.checkpoints", "signing.key", "signing.pub"), "refusing to sign it under a new key"),  # r9_resign.sh
    (("audit.log", "audit.log.head", "audit.log.checkpoints", "signing.key", "signing.pub", "audit.key"),
     "this vault's audit trail was replaced or removed"),                               # a whole new audit trail
])
def test_v4_vault_bound_to_its_audit_trail_refuses_a_replaced_or_removed_one(cli, initialized, zt_env, tmp_path, removed, reason):
    """F4/F6: the vault records (inside its meta MAC) the audit log id and signing key
    id its writes went to; with the log deleted, re-keyed or replaced, together with
    an older vault.db, the vault is exit 5 before anything is read."""
    import json

    home = Path(zt_env["ZEROTRUST_HOME"])
    _put(cli, "app/x", b"old")
    shutil.copy2(_db(zt_env), tmp_path / "pre.db")
    _put(cli, "app/x", b"new")
    binding = json.loads(dict(_rows(zt_env, "SELECT key, value FROM meta"))["audit_binding"])
    assert set(binding) == {"log", "key_id"} and all(binding.values())
    if "audit.log" not in removed:  # cut the last records, as r9_resign.sh does
        lines = (home / "audit.log").read_bytes().split(b"\n")
        (home / "audit.log").write_bytes(b"\n".join(lines[:-3]) + b"\n")
    shutil.copy2(tmp_path / "pre.db", _db(zt_env))
    for name in removed + ("vault.db-wal", "vault.db-shm"):
        (home / name).unlink(missing_ok=True)
    result = _refused(cli, "vault", "get", "app/x", forbidden=b"old")
    assert reason in result.err, result.err


def test_v4_audit_binding_cannot_be_edited_or_dropped(cli, initialized, zt_env):
    _put(cli, "app/x", b"v")
    _sql(zt_env, "DELETE FROM meta WHERE key = 'audit_binding'")
    result = _refused(cli, "vault", "get", "app/x")
    assert "meta was edited" in result.err


def test_v4_library_without_audit_log_opens_a_bound_vault(cli, initialized, zt_env):
    from tests.reliability.helpers import open_vault

    _put(cli, "app/x", b"v")
    with open_vault(zt_env) as vault:  # audit=None: no floor, no binding check (documented)
        secret, _ = vault.get("app/x")
        assert secret.reveal() == b"v"


_CRASH_AFTER_RECORD = """
import os, shutil, sys
from zerotrust_admin.audit.log import AuditLog
original = AuditLog.append
MODE, KEEP = sys.argv[1], sys.argv[2]
def append(self, **kw):
    record = original(self, **kw)
    if "vault" in kw and kw.get("event") == "secret_access":
        if MODE == "crash":
            os._exit(9)                                    # killed between the write's audit record and its COMMIT
        shutil.copy2(self.head_path, KEEP)                 # the attacker keeps the anchor written at this instant
    return record
AuditLog.append = append
sys.argv = ["zerotrust-admin"] + sys.argv[3:]
from zerotrust_admin.cli.entry import main
main()
"""


def _put_with(zt_env, mode: str, keep: Path, name: str, value: bytes) -> int:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _CRASH_AFTER_RECORD, mode, str(keep), "vault", "put", name], input=value,
                          capture_output=True, env=zt_env, timeout=60, cwd=str(Path(__file__).resolve().parents[2]))
    return proc.returncode


def test_v4_anchor_from_inside_the_write_copied_back_with_the_older_vault_refused(cli, initialized, zt_env, tmp_path):
    """F3 (r2_anchor.sh): the anchor written between a put's audit record and its
    confirmation still confirms the previous generation; copied back with the
    pre-put vault.db it would roll the last write back. Its pending generation
    is ahead of the vault: exit 5."""
    home = Path(zt_env["ZEROTRUST_HOME"])
    _put(cli, "app/x", b"old")
    shutil.copy2(_db(zt_env), tmp_path / "pre.db")
    assert _put_with(zt_env, "keep", tmp_path / "anchor", "app/x", b"new") == 0
    assert cli("vault", "get", "app/x").out == b"new"
    shutil.copy2(tmp_path / "anchor", home / "audit.log.head")
    shutil.copy2(tmp_path / "pre.db", _db(zt_env))
    for name in ("vault.db-wal", "vault.db-shm"):
        (home / name).unlink(missing_ok=True)
    result = _refused(cli, "vault", "get", "app/x", forbidden=b"old")
    assert "the last audited write (generation" in result.err and "vault recover --interrupted" in result.err, result.err


def test_v4_crash_between_record_and_commit_needs_recover_interrupted(cli, initialized, zt_env):
    """A put killed after its audit record, before its COMMIT: exit 5 until an
    operator runs `vault recover --interrupted` (confirmation, audited); then the
    value is the previous one and writes go on."""
    import json

    _put(cli, "app/x", b"old")
    assert _put_with(zt_env, "crash", Path("/nonexistent"), "app/x", b"new") == 9
    result = _refused(cli, "vault", "get", "app/x")
    assert "it was interrupted" in result.err
    assert cli("vault", "recover", "--interrupted", input=b"").code == USAGE  # no terminal, no --yes
    _refused(cli, "vault", "get", "app/x")
    result = cli("vault", "recover", "--interrupted", "--yes", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["pending_generation"] == json.loads(result.out)["vault_generation"] + 1
    assert cli("vault", "get", "app/x").out == b"old"
    result = cli("vault", "recover", "--interrupted", "--yes")
    assert result.code == 0 and "Nothing to recover" in result.err, result.err
    _put(cli, "app/x", b"newer")
    assert cli("vault", "get", "app/x").out == b"newer"
    assert cli("audit", "verify").code == 0
    records = [json.loads(line) for line in (Path(zt_env["ZEROTRUST_HOME"]) / "audit.log").read_text().splitlines()]
    assert [r["action"] for r in records if r["event"] == "audit_recovery"] == ["acknowledge"]


def test_v4_recover_interrupted_needs_the_restore_policy(cli, initialized, zt_env):
    _put(cli, "app/x", b"old")
    assert _put_with(zt_env, "crash", Path("/nonexistent"), "app/x", b"new") == 9
    import yaml

    config = Path(zt_env["HOME"]) / "policy.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({"access": {"policies": [
        {"principals": ["*"], "secrets": ["*"], "actions": ["read", "write", "list"], "effect": "allow"}]}}))
    config.chmod(0o600)
    policy = {"ZEROTRUST_CONFIG": str(config)}
    result = cli("vault", "recover", "--interrupted", "--yes", env=policy)
    assert result.code == 4, result.err
    _refused(cli, "vault", "get", "app/x")


# --- V5: key metadata -----------------------------------------------------------------
def test_v5_dek_created_in_the_future_refused(cli, initialized, zt_env):
    _put(cli, "app/token", b"genuine")
    _sql(zt_env, "UPDATE deks SET created = '2999-01-01T00:00:00.000000Z'")  # "not due" forever
    result = _refused(cli, "rotate-keys", "--dry-run")
    assert "data key" in result.err
    _refused(cli, "keys", "status")
    _refused(cli, "vault", "get", "app/token")


def test_v5_session_key_state_flipped_refused(cli, initialized, zt_env):
    for _ in range(2):
        assert cli("rotate-keys", "--session").code == 0
    assert sorted(r[0] for r in _rows(zt_env, "SELECT state FROM session_keys")) == ["current", "previous"]
    _sql(zt_env, "UPDATE session_keys SET state = CASE state WHEN 'current' THEN 'previous' ELSE 'current' END")
    result = _refused(cli, "keys", "status")
    assert "session key" in result.err


def test_v5_created_by_edited_refused(cli, initialized, zt_env):
    _put(cli, "app/token", b"genuine")
    _sql(zt_env, "UPDATE versions SET created_by = 'mallory@EXAMPLE.COM'")
    _refused(cli, "vault", "history", "app/token")
    _refused(cli, "vault", "get", "app/token", forbidden=b"genuine")


def test_v5_deleted_by_and_dek_rotated_edited_refused(cli, initialized, zt_env):
    _put(cli, "app/token", b"genuine")
    assert cli("vault", "delete", "app/token", "--yes").code == 0
    _sql(zt_env, "UPDATE secrets SET deleted_by = 'someone-else@EXAMPLE.COM'")
    _refused(cli, "vault", "list", "--deleted")
    _refused(cli, "vault", "undelete", "app/token")
    _sql(zt_env, "UPDATE secrets SET deleted_by = 'alice@EXAMPLE.COM'")  # put back: the file verifies again
    assert cli("rotate-keys", "--dek").code == 0
    _sql(zt_env, "UPDATE meta SET value = '2999-01-01T00:00:00.000000Z' WHERE key = 'dek_rotated'")
    _refused(cli, "keys", "status")


# --- V6: file modes ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o660, 0o604])
def test_v6_vault_others_can_read_or_write_refused(cli, initialized, zt_env, mode):
    _put(cli, "app/token", b"genuine")
    os.chmod(_db(zt_env), mode)
    result = _refused(cli, "vault", "get", "app/token", code=USAGE)
    assert f"chmod 600 {_db(zt_env)}" in result.err
    assert oct(os.stat(_db(zt_env)).st_mode & 0o777) == oct(mode)  # never chmodded behind the operator's back


def test_v6_symlink_in_place_of_the_vault_refused(cli, initialized, zt_env, tmp_path):
    _put(cli, "app/token", b"genuine")
    real = tmp_path / "elsewhere.db"
    shutil.move(_db(zt_env), real)
    os.symlink(real, _db(zt_env))
    result = _refused(cli, "vault", "get", "app/token", code=USAGE)
    assert "symbolic link" in result.err

"""Changing the master key: rotation (same kind, new key) and migration
(key file <-> HSM). Either way only the data keys and session keys are
re-wrapped, in one transaction; no secret is touched.

Crash safety (docs/key-hierarchy.md): every step is recorded before it has an
effect outside the database, so a run killed at any point is finished or undone
by the next one (``recover``), and the vault always opens:

1. meta ``master_pending`` = the new key's id (+ where it will live)   [txn A]
2. the new key is created: a token key on the HSM, or ``master.key`` is
   replaced atomically after the old one was copied to ``master.key.previous``
   (opening tries both files; the key check value picks the right one)
3. every wrapped key + ``master_key_id``/``master_source``/``master_params``/
   ``kcv``/``master_created`` switch, ``master_pending`` is dropped and
   ``master_retiring`` records the old key                              [txn B]
4. the old key is destroyed (token object deleted / file unlinked)
5. ``master_retiring`` is dropped                                       [txn C]

A crash before B leaves the old key in force (``recover`` deletes the
uncommitted new key); a crash after B leaves the new key in force
(``recover`` destroys the old one).

The ``master_pending``/``master_retiring`` records choose nothing outside the
configuration (threat-model V1): a token key is looked up under the configured
token and label (the record must agree with them) and only its key id comes
from the record; a key file to unlink must be the configured ``master.key`` or
``master.key.previous``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as pyrandom
from pathlib import Path
from typing import Callable

from zerotrust_admin import fsutil
from zerotrust_admin.crypto import random_key
from zerotrust_admin.errors import AlreadyExistsError, IntegrityError, UsageError
from zerotrust_admin.keys import KeySourceContext, UnwrapFailed
from zerotrust_admin.keys.configured import HINT, shown_untrusted, check_recorded, configured_remote
from zerotrust_admin.keys.keyfile import KeyFileSource, key_file_path
from zerotrust_admin.keys.raw import RawKeySource, decode_key_text
from zerotrust_admin.rotation.schedule import UNROTATABLE_SOURCES, effective_source_kind
from zerotrust_admin.secret import Secret
from zerotrust_admin.vault import format as fmt

Checkpoint = Callable[[str], None]
TARGETS = ("keyfile", "pkcs11", "passphrase", "transit")
TARGET_ALIASES = {"hsm": "pkcs11", "key-file": "keyfile", "file": "keyfile", "aws-cloudhsm": "pkcs11", "vault-transit": "transit"}


def _noop(_: str) -> None:
    return None


def previous_path(ctx: KeySourceContext) -> Path:
    path = key_file_path(ctx)
    return path.with_name(path.name + ".previous")


def _key_from_file(path: Path) -> Secret | None:
    if not os.path.lexists(path):
        return None
    return decode_key_text(fsutil.read_private_file(path, what="master key file"), f"master key file {path}")


def _opens(key: Secret | None, vault_id: str, key_id: str, kcv_hex: str | None) -> bool:
    if key is None or not kcv_hex:
        return False
    try:
        RawKeySource(Secret(key.reveal()), key_id, "check").unwrap(bytes.fromhex(kcv_hex), fmt.kcv_aad(vault_id, key_id))
        return True
    except UnwrapFailed:
        return False


def _file_opens(path: Path, vault_id: str, key_id: str, kcv_hex: str | None) -> bool:
    return _opens(_key_from_file(path), vault_id, key_id, kcv_hex)


# --- recovery -----------------------------------------------------------------------
def recover(vault, ctx: KeySourceContext, checkpoint: Checkpoint | None = None) -> list[str]:
    """Finish or undo an interrupted master key change. Returns what was done."""
    checkpoint = checkpoint or _noop
    done: list[str] = []
    meta = vault.reload_meta()
    pending = json.loads(meta[fmt.META_MASTER_PENDING]) if fmt.META_MASTER_PENDING in meta else None
    if pending is not None:
        if pending.get("key_id") != meta["master_key_id"]:
            _discard_pending(vault, ctx, pending, meta)
            done.append(f"discarded uncommitted master key {pending.get('key_id')}")
        vault.set_meta({}, deletes=[fmt.META_MASTER_PENDING])
    retiring = json.loads(meta[fmt.META_MASTER_RETIRING]) if fmt.META_MASTER_RETIRING in meta else None
    if retiring is not None:
        _destroy_retiring(vault, ctx, retiring, meta)
        checkpoint("retired-destroyed")
        vault.set_meta({}, deletes=[fmt.META_MASTER_RETIRING])
        done.append(f"destroyed retired master key {retiring.get('key_id')}")
    return done


def _discard_pending(vault, ctx: KeySourceContext, pending: dict, meta: dict) -> None:
    kind = pending.get("kind")
    if kind == "pkcs11":
        from zerotrust_admin.keys.pkcs11 import Pkcs11KeySource

        # The record names a token key to delete: only the configured token and
        # label, only the recorded key id (a vault file does not choose what goes).
        check_recorded(ctx, "pkcs11", {**(pending.get("params") or {}), "key_id": pending["key_id"]}, what="pending master key")
        Pkcs11KeySource.destroy_key(ctx, str(pending["key_id"]))
    elif kind == "keyfile":
        path, prev = key_file_path(ctx), previous_path(ctx)
        current_id, current_kcv = meta["master_key_id"], meta["kcv"]
        file_based = meta["master_source"] in ("keyfile", "env")
        if _file_opens(path, vault.vault_id, pending["key_id"], pending.get("kcv")):
            # The uncommitted new key sits in master.key: put the current one back.
            old = _key_from_file(prev)
            if _opens(old, vault.vault_id, current_id, current_kcv):
                fsutil.write_private_file(path, base64.b64encode(old.reveal()) + b"\n")
            elif file_based:
                raise IntegrityError(f"an interrupted rotation left {path} holding an uncommitted key and {prev} is missing or wrong",
                                     hint="restore master.key from your key backup")
            else:
                os.unlink(path)
                fsutil.fsync_dir(path.parent)
        if _file_opens(prev, vault.vault_id, current_id, current_kcv) and _file_opens(path, vault.vault_id, current_id, current_kcv):
            os.unlink(prev)  # a duplicate of the current key
            fsutil.fsync_dir(prev.parent)


def _destroy_retiring(vault, ctx: KeySourceContext, retiring: dict, meta: dict) -> None:
    kind = retiring.get("kind")
    if kind == "pkcs11":
        from zerotrust_admin.keys.pkcs11 import Pkcs11KeySource

        check_recorded(ctx, "pkcs11", {**(retiring.get("params") or {}), "key_id": retiring["key_id"]}, what="retiring master key")
        Pkcs11KeySource.destroy_key(ctx, str(retiring["key_id"]))
    elif kind == "keyfile":
        # Only one of the two files the configuration names is ever unlinked.
        allowed = {str(previous_path(ctx)), str(key_file_path(ctx))}
        if str(retiring.get("path")) not in allowed:
            raise IntegrityError(f"the vault's retiring master key record names a file the configuration does not ({shown_untrusted(retiring.get('path'))}); "
                                 "the vault file was edited or encryption.key_file changed during a rotation", hint=HINT)
        path = Path(retiring["path"])
        key = _key_from_file(path)
        if _opens(key, vault.vault_id, retiring["key_id"], retiring.get("kcv")) and not _opens(key, vault.vault_id, meta["master_key_id"], meta["kcv"]):
            os.unlink(path)
            fsutil.fsync_dir(path.parent)


# --- the change itself ----------------------------------------------------------------
def normalize_target(target: str) -> str:
    kind = TARGET_ALIASES.get(target.lower(), target.lower())
    if kind not in TARGETS:
        raise UsageError(f"unknown master key target {target!r}", hint="one of: keyfile, hsm, transit")
    return kind


def require_configured_target(ctx: KeySourceContext, kind: str) -> None:
    """A vault opens only with a source the configuration enables (threat-model V1):
    moving the master key to the HSM or transit needs that block first."""
    if kind in ("pkcs11", "transit") and kind not in configured_remote(ctx):
        block = "encryption.hsm (enabled: true)" if kind == "pkcs11" else "encryption.transit (enabled: true)"
        raise UsageError(f"cannot move the master key to {kind}: the configuration does not enable it", hint=f"configure {block}, then re-run")


def change_master(vault, ctx: KeySourceContext, *, target: str | None = None, checkpoint: Checkpoint | None = None) -> dict:
    """Rotate the master key (``target`` None: a new key of the same kind) or
    migrate it to another kind. The caller holds the rotation lock."""
    checkpoint = checkpoint or _noop
    recovered = recover(vault, ctx, checkpoint)
    current_kind = effective_source_kind(vault)
    if current_kind in UNROTATABLE_SOURCES:
        raise UsageError(f"cannot change the master key: {UNROTATABLE_SOURCES[current_kind]}")
    kind = normalize_target(target) if target else ("keyfile" if current_kind == "keyfile" else current_kind)
    if target and kind == current_kind:
        raise UsageError(f"the vault's master key is already a {kind} key", hint="use 'rotate-keys --master' for a new key of the same kind")
    old_id, meta = vault.master_key_id, vault.meta
    retiring: dict = {"kind": current_kind, "key_id": old_id, "kcv": meta["kcv"]}
    if current_kind == "keyfile":
        retiring["path"] = str(previous_path(ctx) if kind == "keyfile" else key_file_path(ctx))
    elif current_kind == "pkcs11":
        retiring["params"] = {k: v for k, v in json.loads(meta["master_params"]).items() if k != "key_id"}
    if kind != current_kind:
        require_configured_target(ctx, kind)
    new_id = pyrandom.token_hex(8)
    if kind == "keyfile":
        source, params = _new_keyfile(vault, ctx, new_id, current_kind, checkpoint)
    elif kind == "pkcs11":
        from zerotrust_admin.keys.pkcs11 import Pkcs11KeySource, hsm_location

        session = Pkcs11KeySource.login(ctx)  # a bad PIN/module/token fails here, before anything is recorded
        try:
            vault.set_meta({fmt.META_MASTER_PENDING: json.dumps({"kind": "pkcs11", "key_id": new_id, "params": hsm_location(ctx)}, sort_keys=True)})
            checkpoint("pending-recorded")
            source, params = Pkcs11KeySource.create(ctx, new_id)
        finally:
            session.release()
        checkpoint("new-key-written")
    elif kind == current_kind and hasattr(vault.key_source, "rotate_provider_key"):
        # A key held by a service that versions it (Vault transit): the service
        # rotates, and re-wrapping moves every data key to the newest version.
        vault.set_meta({fmt.META_MASTER_PENDING: json.dumps({"kind": kind, "key_id": new_id}, sort_keys=True)})
        checkpoint("pending-recorded")
        vault.key_source.rotate_provider_key()
        params = {k: v for k, v in json.loads(meta["master_params"]).items() if k != "key_id"}
        source = type(vault.key_source).open(ctx, {**params, "key_id": new_id})
        checkpoint("new-key-written")
    else:  # passphrase (a fresh salt and the passphrase given now), or another registered source
        from zerotrust_admin.keys import source_class

        vault.set_meta({fmt.META_MASTER_PENDING: json.dumps({"kind": kind, "key_id": new_id}, sort_keys=True)})
        checkpoint("pending-recorded")
        source, params = source_class(kind).create(ctx, new_id)
        checkpoint("new-key-written")
    try:
        result = vault.rewrap_master(source, kind, params, retiring=retiring)
    except BaseException:
        source.close()
        raise
    checkpoint("committed")
    recover(vault, ctx, checkpoint)
    result.update({"from": current_kind, "to": kind, "recovered": recovered})
    return result


def _new_keyfile(vault, ctx: KeySourceContext, new_id: str, current_kind: str, checkpoint: Checkpoint):
    path, prev = key_file_path(ctx), previous_path(ctx)
    key = random_key()
    source = KeyFileSource(Secret(key), new_id, str(path))
    kcv = source.wrap(fmt.KCV_PLAINTEXT, fmt.kcv_aad(vault.vault_id, new_id)).hex()
    if current_kind == "keyfile":
        old = _key_from_file(path)
        if not _opens(old, vault.vault_id, vault.master_key_id, vault.meta["kcv"]):
            raise IntegrityError(f"{path} does not hold the vault's current master key", hint="restore master.key from your key backup")
    elif os.path.lexists(path):
        raise AlreadyExistsError(f"{path} already exists; refusing to overwrite a key file the vault does not use",
                                 hint="move it away (it may be an old master key you want to keep), then re-run")
    vault.set_meta({fmt.META_MASTER_PENDING: json.dumps({"kind": "keyfile", "key_id": new_id, "path": str(path), "kcv": kcv}, sort_keys=True)})
    checkpoint("pending-recorded")
    fsutil.ensure_private_dir(path.parent)
    if current_kind == "keyfile":
        fsutil.write_private_file(prev, base64.b64encode(old.reveal()) + b"\n")
        checkpoint("previous-written")
    fsutil.write_private_file(path, base64.b64encode(key) + b"\n")
    checkpoint("new-key-written")
    return source, {}

"""Which master key opens a vault: the configuration decides, never the vault
file (threat-model rows V1 and V7).

A vault records its key source (``meta.master_source`` / ``master_params``).
Someone who can write the file but holds no key could point those records at
a transit URL they run (the operator's token goes to them, and the data keys
they hand out seal later writes) or at a PKCS#11 module of their own (code
this process would load). So:

- Every endpoint, module, token, key label and credential comes from the
  configuration (``encryption.hsm``, ``encryption.transit``,
  ``encryption.key_file``, ``encryption.key``, the passphrase).
- A source with an endpoint (``pkcs11``, ``transit``, or a registered class
  with ``configured_location``) opens only when the configuration enables
  that kind and every recorded location field equals the configured one;
  anything else is an IntegrityError (exit 5) raised before any network call
  or library load. Records carry no other keys.
- The local sources (key file, ``ZEROTRUST_ENCRYPTION_KEY``, passphrase) have
  no endpoint and stay interchangeable as before: whichever the vault records
  is opened from the configured local material and the key check value
  decides. This is also how ``keys migrate`` opens a key-file vault while the
  configuration already describes the HSM it moves to.
- From the file come only the master key id and the passphrase's scrypt salt
  and work factors, the latter bounded before any derivation (V7).
"""

from __future__ import annotations

import os

from zerotrust_admin.errors import IntegrityError
from zerotrust_admin.keys import envkey, keyfile, passphrase
from zerotrust_admin.keys.base import KeySource, KeySourceContext

LOCAL_KINDS = (keyfile.KeyFileSource.kind, envkey.EnvKeySource.kind, passphrase.PassphraseSource.kind)
LOCAL_PARAMS = {keyfile.KeyFileSource.kind: {"key_id"}, envkey.EnvKeySource.kind: {"key_id"},
                passphrase.PassphraseSource.kind: {"key_id", "kdf"}}
EDITED = "the vault file was edited or the configuration is wrong"
HINT = "if encryption.* changed, put it back as it was when the vault was last opened; otherwise restore the vault from a backup"


def shown_untrusted(value, limit: int = 120) -> str:
    """A recorded (untrusted) value for an error line: printable, bounded."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= limit else text[:limit] + "..."


def describe_location(kind: str, location: dict | None) -> str:
    if not location:
        return shown_untrusted(kind)
    if kind == "transit":
        return f"transit at {shown_untrusted(location.get('url'))} (key {shown_untrusted(location.get('mount'))}/{shown_untrusted(location.get('key_name'))})"
    if kind == "pkcs11":
        return f"pkcs11 ({shown_untrusted(location.get('provider'))} token {shown_untrusted(location.get('token_label'))}, key label {shown_untrusted(location.get('key_label'))})"
    return f"{shown_untrusted(kind)} " + ", ".join(f"{shown_untrusted(k)}={shown_untrusted(v)}" for k, v in sorted(location.items()))


def configured_remote(ctx: KeySourceContext) -> dict[str, dict]:
    """{kind: location} for every source with an endpoint the configuration enables."""
    from zerotrust_admin.keys import _REGISTRY

    out = {}
    for kind, cls in _REGISTRY.items():
        locate = getattr(cls, "configured_location", None)
        if locate is not None:
            location = locate(ctx)
            if location is not None:
                out[kind] = location
    return out


def describe_configured(ctx: KeySourceContext, remote: dict[str, dict]) -> str:
    if remote:
        return " and ".join(describe_location(kind, loc) for kind, loc in sorted(remote.items()))
    if (ctx.config.get("encryption") or {}).get("key"):
        return "env (ZEROTRUST_ENCRYPTION_KEY)"
    return "keyfile (or a passphrase)"


def _mismatch(recorded: str, configured: str) -> IntegrityError:
    return IntegrityError(f"the vault records key source {recorded} but the configuration says {configured}; {EDITED}", hint=HINT)


def check_recorded(ctx: KeySourceContext, kind: str, params: dict, *, what: str = "key source") -> dict:
    """The recorded (kind, params) agree with the configuration, or IntegrityError.
    Returns the configured location ({} for a local kind). No I/O beyond reading
    the configuration's own files."""
    from zerotrust_admin.keys import _REGISTRY

    if not isinstance(kind, str) or not isinstance(params, dict):
        raise IntegrityError(f"the vault's {what} record is damaged; {EDITED}", hint=HINT)
    params = _normalized(kind, params)
    if kind in LOCAL_KINDS:
        extra = set(params) - LOCAL_PARAMS[kind]
        if extra:
            raise IntegrityError(f"the vault records key source {shown_untrusted(kind)} with settings it never has ({shown_untrusted(', '.join(sorted(extra)))}); {EDITED}", hint=HINT)
        return {}
    cls = _REGISTRY.get(kind)
    if cls is None or getattr(cls, "configured_location", None) is None:
        raise IntegrityError(f"the vault records an unknown key source {shown_untrusted(kind)!r}; {EDITED}", hint=HINT)
    remote = configured_remote(ctx)
    recorded_location = {k: v for k, v in params.items() if k != "key_id"}
    if kind not in remote:
        raise _mismatch(describe_location(kind, recorded_location), describe_configured(ctx, remote))
    location = remote[kind]
    if recorded_location != location:
        raise _mismatch(describe_location(kind, recorded_location), describe_location(kind, location))
    return location


def _normalized(kind: str, params: dict) -> dict:
    """Recorded params in the form the configuration is compared in."""
    out = dict(params)
    if kind == "transit" and isinstance(out.get("url"), str):
        out["url"] = out["url"].strip().rstrip("/")
    if kind == "pkcs11" and isinstance(out.get("provider"), str):
        out["provider"] = {"cloudhsm": "aws-cloudhsm"}.get(out["provider"].lower(), out["provider"].lower())
    return out


def open_configured_source(ctx: KeySourceContext, recorded_kind: str, recorded_params: dict) -> KeySource:
    """The master key for a vault that records (``recorded_kind``, ``recorded_params``),
    opened from the configuration. IntegrityError (exit 5) when the records
    disagree with it or carry out-of-bounds work factors; nothing is contacted,
    loaded or derived before that check."""
    check_recorded(ctx, recorded_kind, recorded_params)
    params = recorded_params
    key_id = params.get("key_id", "")
    if not isinstance(key_id, str):
        raise IntegrityError(f"the vault's master key id record is damaged; {EDITED}", hint=HINT)
    if recorded_kind == passphrase.PassphraseSource.kind:
        return passphrase.PassphraseSource.open(ctx, {"key_id": key_id, "kdf": params.get("kdf")})
    if recorded_kind in (keyfile.KeyFileSource.kind, envkey.EnvKeySource.kind):
        return _open_raw_key(ctx, key_id)
    from zerotrust_admin.keys import source_class

    return source_class(recorded_kind).open(ctx, {"key_id": key_id})


def _open_raw_key(ctx: KeySourceContext, key_id: str) -> KeySource:
    """A key file or the env key, interchangeable (the key check value decides);
    during a key-file rotation, either ``master.key`` or ``master.key.previous``."""
    params = {"key_id": key_id}
    if (ctx.config.get("encryption") or {}).get("key"):
        return envkey.EnvKeySource.open(ctx, params)
    primary = keyfile.KeyFileSource.open(ctx, params)
    path = keyfile.key_file_path(ctx)
    previous = path.with_name(path.name + ".previous")
    if os.path.lexists(previous):
        # A master key rotation was interrupted before or just after its
        # commit: the vault opens with whichever key its check value accepts.
        from zerotrust_admin.fsutil import read_private_file
        from zerotrust_admin.keys.fallback import FirstMatchKeySource
        from zerotrust_admin.keys.raw import decode_key_text

        text = read_private_file(previous, what="previous master key file")
        older = keyfile.KeyFileSource(decode_key_text(text, f"master key file {previous}"), key_id, str(previous))
        return FirstMatchKeySource([primary, older])
    return primary

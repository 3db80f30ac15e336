"""The installation's one Ed25519 signing key: audit checkpoints, signed
backups, evidence bundles.

Configuration (``security.signing``)::

    security:
      signing:
        source: file                 # or pkcs11 (the token of encryption.hsm.config)
        key_file: ~/.local/share/zerotrust/signing.key   # default: $ZEROTRUST_HOME/signing.key
        key_label: zerotrust-signing # pkcs11: the label of the EC_EDWARDS key pair

Files (docs/audit-format.md, "Signing key"):

- ``signing.key`` (0600): ``zt-sign-ed25519-secret <base64 of the 32-byte seed>\\n``
- ``signing.pub`` (0600 when we write it; anyone may hold a copy):
  ``zt-sign-ed25519 <base64 of the 32-byte public key>\\n``. This is what an
  auditor pins and passes as ``audit verify --public-key FILE`` or
  ``vault restore --signer FILE``.

The key is created at ``init`` (by the first audit record) or lazily at first
use, but never over an audit log that already has signed checkpoints: a new
key there would hide a key replacement (threat model A5), so that is exit 5.
No typer/rich here; ``crypto.ed25519`` (and with it cryptography's asymmetric
modules) is imported only when a key is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from zerotrust_admin import fsutil
from zerotrust_admin.errors import ConfigError, IntegrityError, NotFoundError, UsageError

SECRET_TAG = "zt-sign-ed25519-secret"
PUBLIC_TAG = "zt-sign-ed25519"
ALGORITHM = "ed25519"
DEFAULT_KEY_LABEL = "zerotrust-signing"
SOURCES = ("file", "pkcs11")


class SignatureError(IntegrityError):
    """A signature does not verify under the trusted public key (exit 5)."""


def key_id(public_raw: bytes) -> str:
    """First 8 bytes of the SHA-256 of the raw public key, hex (= crypto.ed25519.key_id)."""
    return hashlib.sha256(public_raw).digest()[:8].hex()


class PublicKey:
    """A trusted Ed25519 public key. Parsing needs no crypto import."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        if len(raw) != 32:
            raise UsageError("an Ed25519 public key is 32 bytes")
        self.raw = bytes(raw)

    def __repr__(self) -> str:
        return f"PublicKey(key_id={self.key_id!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PublicKey) and other.raw == self.raw

    __hash__ = None  # type: ignore[assignment]

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    def text(self) -> str:
        return f"{PUBLIC_TAG} {base64.b64encode(self.raw).decode('ascii')}\n"

    @classmethod
    def parse(cls, text: str | bytes, *, what: str = "public key") -> "PublicKey":
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        parts = text.strip().split()
        if len(parts) != 2 or parts[0] != PUBLIC_TAG:
            raise UsageError(f"{what} is not a zerotrust signing public key", hint=f"expected one line: {PUBLIC_TAG} <base64 of 32 bytes> (zerotrust-admin keys public-key)")
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"{what} is not valid base64") from None
        if len(raw) != 32:
            raise UsageError(f"{what} is not 32 bytes")
        return cls(raw)

    @classmethod
    def from_file(cls, path: Path) -> "PublicKey":
        path = Path(path).expanduser()
        try:
            with open(path, "rb") as fh:
                data = fh.read(4096)
        except FileNotFoundError:
            raise NotFoundError(f"public key file {path} does not exist") from None
        except OSError as exc:
            raise UsageError(f"cannot read public key file {path}: {exc.strerror}") from None
        return cls.parse(data, what=f"public key file {path}")

    def verify(self, signature: bytes, message: bytes, *, what: str = "signature") -> None:
        """Raises SignatureError (exit 5) unless ``signature`` is this key's over ``message``."""
        from zerotrust_admin.crypto.ed25519 import SignatureInvalid, ed25519_verify

        try:
            ed25519_verify(self.raw, signature, message)
        except SignatureInvalid:
            raise SignatureError(f"{what} does not verify under signing key {self.key_id}",
                                 hint="the data was changed, or it was signed by a different key than the one you trust") from None


class SigningKey:
    """The private half. ``sign`` is the only use; the seed never leaves this object
    (its repr names the key id and where it lives)."""

    def __init__(self, public: PublicKey, signer, location: str, source: str):
        self.public = public
        self._signer = signer
        self.location = location
        self.source = source

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, source={self.source!r}, location={self.location!r})"

    @property
    def public_raw(self) -> bytes:
        return self.public.raw

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def public_text(self) -> str:
        return self.public.text()

    def sign(self, message: bytes) -> bytes:
        return self._signer(message)


# --- settings ------------------------------------------------------------------
def _config_data(config) -> dict:
    if config is None:
        return {}
    data = getattr(config, "data", config)
    return data if isinstance(data, dict) else {}


def signing_settings(config, home: Path) -> dict:
    data = _config_data(config)
    section = ((data.get("security") or {}).get("signing") or {}) if isinstance(data.get("security"), dict) else {}
    if not isinstance(section, dict):
        raise ConfigError("security.signing must be a mapping (source, key_file, key_label)")
    source = str(section.get("source") or "file").lower()
    if source not in SOURCES:
        raise ConfigError(f"security.signing.source {source!r} is not one of {', '.join(SOURCES)}")
    key_file = Path(str(section["key_file"])).expanduser() if section.get("key_file") else Path(home) / "signing.key"
    return {"source": source, "key_file": key_file, "key_label": str(section.get("key_label") or DEFAULT_KEY_LABEL)}


def public_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name[: -len(".key")] + ".pub") if key_file.name.endswith(".key") else key_file.with_name(key_file.name + ".pub")


# --- loading ------------------------------------------------------------------
def load_signing_key(config, home: Path, *, create: bool, refuse_new: str | None = None) -> SigningKey:
    """The installation's signing key. With ``create`` a missing key is made,
    unless ``refuse_new`` says why it must not be (the audit log already has
    signed checkpoints: exit 5)."""
    settings = signing_settings(config, Path(home))
    if create and refuse_new is None and audit_log_has_checkpoints(config, Path(home)):
        refuse_new = "the audit log already has signed checkpoints"
    if settings["source"] == "pkcs11":
        return _load_pkcs11(config, settings, create=create, refuse_new=refuse_new)
    return _load_file(settings["key_file"], create=create, refuse_new=refuse_new)


def audit_log_has_checkpoints(config, home: Path) -> bool:
    """Whether the configured audit log was ever signed (its anchor is a v1
    checkpoint, or its checkpoints file has lines): then no new key may be made."""
    audit_path = getattr(config, "audit_path", None) if config is not None and not isinstance(config, dict) else None
    if audit_path is None:
        configured = ((_config_data(config).get("audit") or {}).get("path")) if isinstance(_config_data(config).get("audit"), dict) else None
        audit_path = Path(str(configured)).expanduser() if configured else Path(home) / "audit.log"
    checkpoints = audit_path.with_name(audit_path.name + ".checkpoints")
    if os.path.lexists(checkpoints) and os.path.getsize(checkpoints) > 0:
        return True
    head = audit_path.with_name(audit_path.name + ".head")
    try:
        with open(head, "rb") as fh:
            return b'"v":' in fh.read(1 << 16)
    except OSError:
        return False


def own_public_key(config, home: Path, *, derived_only: bool = False) -> PublicKey:
    """The installation's own public key: the public half derived from
    ``signing.key`` (or the token's), never ``signing.pub`` alone when the key
    is there; a ``signing.pub`` that does not match it is exit 5 (B1, A5: a
    planted public file must not choose what is trusted). Without
    ``signing.key``, ``signing.pub`` is used (an auditor's copy) unless
    ``derived_only``: a trust decision over input that attacker b can also
    plant (``vault restore``) passes it and gets NotFoundError instead."""
    settings = signing_settings(config, Path(home))
    if settings["source"] == "pkcs11":
        return _load_pkcs11(config, settings, create=False, refuse_new=None).public
    key_file = settings["key_file"]
    pub = public_path(key_file)
    if os.path.lexists(key_file):
        return _load_file(key_file, create=False, refuse_new=None).public
    if os.path.lexists(pub) and not derived_only:
        return PublicKey.from_file(pub)
    raise NotFoundError(f"signing key {key_file} does not exist", hint="run any command that writes an audit record (or init) to create it")


def signing_key_file_exists(config, home: Path) -> bool:
    """A signing key *file* (not a token key) is present: it is only ever created
    together with a log's first record, so without a log it outlived a deleted one."""
    settings = signing_settings(config, Path(home))
    return settings["source"] != "pkcs11" and (os.path.lexists(settings["key_file"]) or os.path.lexists(public_path(settings["key_file"])))


def signing_key_exists(config, home: Path) -> bool:
    settings = signing_settings(config, Path(home))
    if settings["source"] == "pkcs11":
        return True  # the token is the authority; a missing key there is an error at use
    return os.path.lexists(settings["key_file"]) or os.path.lexists(public_path(settings["key_file"]))


def _parse_secret(data: bytes, path: Path) -> bytes:
    parts = data.decode("utf-8", "replace").strip().split()
    if len(parts) != 2 or parts[0] != SECRET_TAG:
        raise IntegrityError(f"signing key {path} is not a zerotrust signing key", hint=f"expected one line: {SECRET_TAG} <base64 of 32 bytes>")
    try:
        seed = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != 32:
        raise IntegrityError(f"signing key {path} does not hold a 32-byte Ed25519 seed")
    return seed


def _load_file(key_file: Path, *, create: bool, refuse_new: str | None) -> SigningKey:
    from zerotrust_admin.crypto import ed25519

    pub_file = public_path(key_file)
    if not os.path.lexists(key_file):
        if not create:
            raise NotFoundError(f"signing key {key_file} does not exist", hint="restore it from backup; it is created at init")
        if refuse_new:
            raise IntegrityError(f"signing key {key_file} is missing but {refuse_new}",
                                 hint="restore signing.key from backup; a new key would hide a key replacement (threat model A5)")
        seed, public = ed25519.ed25519_generate()
        fsutil.ensure_private_dir(key_file.parent)
        try:
            fsutil.write_private_file(key_file, f"{SECRET_TAG} {base64.b64encode(seed).decode('ascii')}\n".encode("ascii"), overwrite=False)
        except Exception:
            if not os.path.lexists(key_file):  # lost a creation race: use the winner's key
                raise
        else:
            fsutil.write_private_file(pub_file, PublicKey(public).text().encode("ascii"))
    seed = _parse_secret(fsutil.read_private_file(key_file, what="signing key file", max_bytes=4096), key_file)
    public = PublicKey(ed25519.ed25519_public(seed))
    if os.path.lexists(pub_file):
        recorded = PublicKey.from_file(pub_file)
        if recorded != public:
            raise IntegrityError(f"signing.pub ({recorded.key_id}) does not belong to {key_file} ({public.key_id})",
                                 hint="one of the two files was replaced; compare with the public key your auditors pinned")
    elif create:
        fsutil.write_private_file(pub_file, public.text().encode("ascii"))
    return SigningKey(public, lambda message: ed25519.ed25519_sign(seed, message), str(key_file), "file")


# --- PKCS#11 --------------------------------------------------------------------
ED25519_OID_PARAMS = bytes.fromhex("06032b6570")  # DER OID 1.3.101.112 (id-Ed25519), RFC 8410


def _load_pkcs11(config, settings: dict, *, create: bool, refuse_new: str | None) -> SigningKey:
    """An EC_EDWARDS (Ed25519) key pair on the token of ``encryption.hsm.config``,
    found by ``key_label``; signing (CKM_EDDSA) runs inside the token and the
    private key is sensitive and not extractable."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

    from zerotrust_admin.keys.base import KeySourceContext
    from zerotrust_admin.keys.pkcs11 import _session, hsm_settings

    data = _config_data(config)
    ctx = KeySourceContext(config=data, home=Path(str(getattr(config, "home", "") or ".")), environ=dict(os.environ))
    hsm = hsm_settings(ctx)
    session = _session(hsm).session
    label = settings["key_label"]
    location = f"pkcs11:{hsm.token_label or hsm.slot}/{label}"
    try:
        private = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label, Attribute.KEY_TYPE: KeyType.EC_EDWARDS}))
        public = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label, Attribute.KEY_TYPE: KeyType.EC_EDWARDS}))
        if not private:
            if not create:
                raise NotFoundError(f"no signing key {label!r} on the HSM token", hint="it is created at init or at first use")
            if refuse_new:
                raise IntegrityError(f"signing key {location} is missing but {refuse_new}",
                                     hint="restore the key on the token; a new key would hide a key replacement (threat model A5)")
            params = session.create_domain_parameters(KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: ED25519_OID_PARAMS}, local=True)
            pub_obj, priv_obj = params.generate_keypair(
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True, label=label,
                public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.TOKEN: True})
            private, public = [priv_obj], [pub_obj]
        if len(private) != 1 or len(public) != 1:
            raise IntegrityError(f"the HSM token holds {len(private)} private and {len(public)} public signing keys labelled {label!r}",
                                 hint="exactly one key pair may carry the signing label")
        point = bytes(public[0][Attribute.EC_POINT])
        raw = point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point
        priv = private[0]
    except pkcs11.PKCS11Error as exc:
        from zerotrust_admin.errors import UnavailableError

        raise UnavailableError(f"the HSM token could not provide the signing key ({type(exc).__name__})",
                               hint="the token must support CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA (SoftHSM 2.6+)") from None

    def sign(message: bytes) -> bytes:
        return bytes(priv.sign(message, mechanism=Mechanism.EDDSA))

    return SigningKey(PublicKey(raw), sign, location, "pkcs11")

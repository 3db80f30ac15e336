"""Master key on a PKCS#11 token (an HSM): ``encryption.hsm`` with ``provider:
pkcs11`` or ``aws-cloudhsm`` (the same code with the CloudHSM module and its
``user:password`` PIN convention). Details: docs/hsm.md.

The key is a non-extractable, sensitive AES-256 token object found by its label
(``key_label``) and its CKA_ID (the vault's master key id), so a rotation adds a
new key under the same label and the vault's records say which one is current.
Wrapping runs inside the HSM: AES-GCM (CKM_AES_GCM) with a random 96-bit nonce
and the caller's associated data, giving ``nonce (12) || ciphertext || tag (16)``
like the software sources. python-pkcs11 is imported only when a vault actually
uses the HSM.
"""

from __future__ import annotations

import os
from pathlib import Path

from zerotrust_admin.errors import ConfigError, DeniedError, NotFoundError, UnavailableError, UsageError
from zerotrust_admin.keys.base import KeySourceContext, UnwrapFailed
from zerotrust_admin.secret import Secret

NONCE_SIZE = 12
TAG_BITS = 128
DEFAULT_KEY_LABEL = "zerotrust-master"
CLOUDHSM_MODULE = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"
CLOUDHSM_TOKEN_LABEL = "hsm1"
PIN_ENV = "ZEROTRUST_HSM_PIN"

# One library handle per module path and one logged-in session per token per
# process: PKCS#11 allows C_Initialize once, and a second login on the same
# token fails with CKR_USER_ALREADY_LOGGED_IN. Sources that share a token
# (the old and the new key during a rotation) share the session.
_LIBS: dict[str, object] = {}
_SESSIONS: dict[tuple[str, str], "_TokenSession"] = {}


class HsmSettings:
    """Where the key lives and how to log in, from ``encryption.hsm``."""

    def __init__(self, provider: str, module: str, token_label: str | None, slot: int | None, key_label: str, pin: Secret | None):
        self.provider = provider
        self.module = module
        self.token_label = token_label
        self.slot = slot
        self.key_label = key_label
        self.pin = pin

    def __repr__(self) -> str:
        return f"HsmSettings(provider={self.provider!r}, module={self.module!r}, token={self.token_label!r}, key_label={self.key_label!r}, pin=<redacted>)"

    @property
    def location(self) -> str:
        return f"{self.provider}:{self.token_label or self.slot}/{self.key_label}"


def _secret_setting(conf: dict, key: str, ctx: KeySourceContext) -> Secret | None:
    value = conf.get(key)
    if value not in (None, ""):
        return Secret(str(value))
    file_path = conf.get(f"{key}_file")
    if file_path:
        from zerotrust_admin.config.loader import read_secret_file

        return Secret(read_secret_file(Path(str(file_path)).expanduser(), f"encryption.hsm.config.{key}_file"))
    return None


def _hsm_block(ctx: KeySourceContext) -> tuple[dict, dict]:
    hsm = (ctx.config.get("encryption") or {}).get("hsm") or {}
    conf = hsm.get("config") or {}
    if not isinstance(conf, dict):
        raise ConfigError("encryption.hsm.config must be a mapping")
    return hsm, conf


def hsm_location(ctx: KeySourceContext) -> dict:
    """Which token key the configuration names: {"provider", "token_label",
    "key_label"} (what a vault records about its HSM key, and compares on open).
    Configuration only; no PIN needed, nothing loaded."""
    hsm, conf = _hsm_block(ctx)
    provider = str(hsm.get("provider") or "pkcs11").lower()
    if provider not in ("pkcs11", "aws-cloudhsm", "cloudhsm"):
        raise ConfigError(f"encryption.hsm.provider {provider!r} is not supported", hint="use pkcs11 or aws-cloudhsm")
    cloudhsm = provider in ("aws-cloudhsm", "cloudhsm")
    token_label = conf.get("token_label") or (CLOUDHSM_TOKEN_LABEL if cloudhsm else None)
    if token_label is None and conf.get("slot") is None:
        raise ConfigError("encryption.hsm.config.token_label is not set", hint="the label given to softhsm2-util --init-token / your HSM's token")
    return {"provider": "aws-cloudhsm" if cloudhsm else "pkcs11", "token_label": str(token_label) if token_label is not None else None,
            "key_label": str(conf.get("key_label") or DEFAULT_KEY_LABEL)}


def hsm_settings(ctx: KeySourceContext) -> HsmSettings:
    """Module, token, key label and PIN: all from ``encryption.hsm``, never from
    the vault file (a module path is code this process would load: V1)."""
    hsm, conf = _hsm_block(ctx)
    location = hsm_location(ctx)
    provider = location["provider"]
    cloudhsm = provider == "aws-cloudhsm"
    module = conf.get("module") or conf.get("library") or (CLOUDHSM_MODULE if cloudhsm else None)
    if not module:
        raise ConfigError("encryption.hsm.config.module is not set", hint="the path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so")
    token_label = location["token_label"]
    slot = conf.get("slot")
    key_label = location["key_label"]
    pin = ctx.environ.get(PIN_ENV)
    pin_secret = Secret(pin) if pin else _secret_setting(conf, "pin", ctx)
    if pin_secret is None and cloudhsm:
        # CloudHSM's PKCS#11 library logs in with "<crypto user>:<password>".
        user = conf.get("hsm_username") or conf.get("username")
        password = _secret_setting(conf, "hsm_password", ctx)
        if user and password is not None:
            with password:
                pin_secret = Secret(f"{user}:".encode() + password.reveal())
    if pin_secret is None:
        raise ConfigError(
            "no PIN for the HSM: set encryption.hsm.config.pin_file"
            + (" (or hsm_username + hsm_password_file)" if cloudhsm else ""),
            hint=f"or export {PIN_ENV} for non-interactive use",
        )
    return HsmSettings(provider, str(module), str(token_label) if token_label is not None else None,
                       int(slot) if slot is not None else None, key_label, pin_secret)


def _load_lib(module: str):
    lib = _LIBS.get(module)
    if lib is not None:
        return lib
    if not os.path.exists(module):
        raise UnavailableError(f"PKCS#11 module {module} does not exist", hint="install the HSM client (Debian: softhsm2) or fix encryption.hsm.config.module")
    import pkcs11

    try:
        lib = pkcs11.lib(module)
    except pkcs11.PKCS11Error:
        raise UnavailableError(f"{module} is not a usable PKCS#11 library", hint="point encryption.hsm.config.module at the vendor's PKCS#11 .so") from None
    _LIBS[module] = lib
    return lib


class _TokenSession:
    def __init__(self, key: tuple[str, str], session):
        self.key = key
        self.session = session
        self.refs = 0

    def release(self) -> None:
        self.refs -= 1
        if self.refs <= 0:
            _SESSIONS.pop(self.key, None)
            try:
                self.session.close()
            except Exception:
                pass


def _session(settings: HsmSettings) -> _TokenSession:
    import pkcs11
    from pkcs11 import exceptions as px

    cache_key = (settings.module, settings.token_label or f"slot:{settings.slot}")
    shared = _SESSIONS.get(cache_key)
    if shared is None:
        lib = _load_lib(settings.module)
        try:
            if settings.token_label is not None:
                token = lib.get_token(token_label=settings.token_label)
            else:
                slots = [s for s in lib.get_slots(token_present=True) if s.slot_id == settings.slot]
                if not slots:
                    raise px.NoSuchToken()
                token = slots[0].get_token()
        except (px.NoSuchToken, px.TokenNotPresent, px.TokenNotRecognised):
            raise UnavailableError(f"no HSM token {settings.token_label or settings.slot!r} in {settings.module}",
                                   hint="check encryption.hsm.config.token_label (softhsm2-util --show-slots)") from None
        except px.MultipleTokensReturned:
            raise UsageError(f"several HSM tokens are labelled {settings.token_label!r}", hint="give each token a unique label") from None
        except pkcs11.PKCS11Error as exc:
            raise UnavailableError(f"the HSM did not answer ({type(exc).__name__})") from None
        assert settings.pin is not None
        try:
            session = token.open(rw=True, user_pin=settings.pin.reveal_text())
        except px.UserAlreadyLoggedIn:
            session = token.open(rw=True)
        except (px.PinIncorrect, px.PinInvalid, px.PinLenRange):
            raise WrongPinError(f"the HSM refused the PIN for token {settings.token_label or settings.slot!r}",
                              hint="check encryption.hsm.config.pin_file (repeated failures lock the token)") from None
        except (px.PinLocked, px.PinExpired):
            raise DeniedError(f"the PIN of HSM token {settings.token_label or settings.slot!r} is locked or expired", hint="ask the HSM security officer to reset it") from None
        except pkcs11.PKCS11Error as exc:
            raise UnavailableError(f"cannot log in to the HSM token ({type(exc).__name__})") from None
        shared = _TokenSession(cache_key, session)
        _SESSIONS[cache_key] = shared
    shared.refs += 1
    return shared


class WrongPinError(DeniedError):
    """The token refused the PIN (counts towards the lockout)."""


def _login_guarded(ctx: KeySourceContext, settings: HsmSettings) -> _TokenSession:
    """Log in under brute-force protection (zerotrust_admin.lockout): refused while
    locked out, before the PIN reaches the token; a wrong PIN counts as a failure."""
    from zerotrust_admin.lockout import AttemptGuard

    guard = AttemptGuard.for_key_context(ctx, "pin")
    guard.check()
    try:
        shared = _session(settings)
    except WrongPinError:
        guard.failed()
        raise
    guard.succeeded()
    return shared


def _find_key(session, key_label: str, key_id: str):
    from pkcs11 import Attribute, ObjectClass

    objects = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: key_label, Attribute.ID: key_id.encode("ascii")}))
    return objects[0] if objects else None


class Pkcs11KeySource:
    kind = "pkcs11"

    def __init__(self, settings: HsmSettings, shared: _TokenSession, key, key_id: str):
        self._settings = settings
        self._shared = shared
        self._key = key
        self.key_id = key_id
        self._closed = False

    def __repr__(self) -> str:
        return f"Pkcs11KeySource(location={self._settings.location!r}, key_id={self.key_id!r})"

    # --- the KeySource protocol ------------------------------------------------
    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        nonce = os.urandom(NONCE_SIZE)
        try:
            return nonce + self._key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, TAG_BITS))
        except pkcs11.PKCS11Error as exc:
            raise UnavailableError(f"the HSM failed to wrap a key ({type(exc).__name__})") from None

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11 import exceptions as px
        from pkcs11.mechanisms import GCMParams

        if len(blob) < NONCE_SIZE + TAG_BITS // 8:
            raise UnwrapFailed()
        try:
            return bytes(self._key.decrypt(blob[NONCE_SIZE:], mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(blob[:NONCE_SIZE], aad, TAG_BITS)))
        except (px.GeneralError, px.EncryptedDataInvalid, px.EncryptedDataLenRange, px.DataInvalid, px.FunctionFailed):
            # SoftHSM reports a bad GCM tag as CKR_GENERAL_ERROR.
            raise UnwrapFailed() from None
        except pkcs11.PKCS11Error as exc:
            raise UnavailableError(f"the HSM failed to unwrap a key ({type(exc).__name__})") from None

    def describe(self) -> dict:
        return {"kind": self.kind, "provider": self._settings.provider, "location": self._settings.location,
                "module": self._settings.module, "token_label": self._settings.token_label, "key_label": self._settings.key_label}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._key = None
            self._shared.release()

    # --- lifecycle -----------------------------------------------------------------
    @classmethod
    def create(cls, ctx: KeySourceContext, key_id: str) -> tuple["Pkcs11KeySource", dict]:
        """Generate a new non-extractable AES-256 key on the token (label + CKA_ID)."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, MechanismFlag

        settings = hsm_settings(ctx)
        shared = _session(settings)
        try:
            key = shared.session.generate_key(
                KeyType.AES, 256, label=settings.key_label, id=key_id.encode("ascii"), store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True},
            )
        except pkcs11.PKCS11Error as exc:
            shared.release()
            raise UnavailableError(f"the HSM could not create the master key ({type(exc).__name__})", hint="is the token full or read-only?") from None
        params = {"provider": settings.provider, "token_label": settings.token_label, "key_label": settings.key_label}
        return cls(settings, shared, key, key_id), params

    @classmethod
    def configured_location(cls, ctx: KeySourceContext) -> dict | None:
        """What the configuration says about the HSM key (None: no HSM configured)."""
        hsm, _conf = _hsm_block(ctx)
        return hsm_location(ctx) if hsm.get("enabled") else None

    @classmethod
    def open(cls, ctx: KeySourceContext, params: dict) -> "Pkcs11KeySource":
        """The configured token key with CKA_ID ``params["key_id"]``; nothing
        else is taken from ``params`` (keys.open_configured_source has compared
        the vault's records with the configuration)."""
        import pkcs11

        settings = hsm_settings(ctx)
        key_id = params.get("key_id", "")
        shared = _login_guarded(ctx, settings)
        try:
            key = _find_key(shared.session, settings.key_label, key_id)
        except pkcs11.PKCS11Error as exc:
            shared.release()
            raise UnavailableError(f"the HSM failed to look up the master key ({type(exc).__name__})") from None
        if key is None:
            shared.release()
            raise NotFoundError(f"HSM master key {settings.key_label!r} (id {key_id}) not found on token {settings.token_label or settings.slot!r}",
                                hint="check encryption.hsm.config.token_label/key_label; the key may have been deleted from the token")
        return cls(settings, shared, key, key_id)

    @classmethod
    def login(cls, ctx: KeySourceContext) -> "_TokenSession":
        """Log in to the token now (fails fast on a bad PIN/module/token); the
        caller calls ``release()`` on the result when done."""
        return _session(hsm_settings(ctx))

    @classmethod
    def destroy_key(cls, ctx: KeySourceContext, key_id: str) -> bool:
        """Delete the configured label's token key with CKA_ID ``key_id``; False if absent."""
        import pkcs11

        settings = hsm_settings(ctx)
        shared = _session(settings)
        try:
            key = _find_key(shared.session, settings.key_label, key_id)
            if key is None:
                return False
            key.destroy()
            return True
        except pkcs11.PKCS11Error as exc:
            raise UnavailableError(f"the HSM failed to delete a retired key ({type(exc).__name__})") from None
        finally:
            shared.release()

"""The platform key inside a PKCS#11 token (an HSM; SoftHSM2 in tests), through python-pkcs11.

The key is generated inside the token (:func:`generate_token_key`) as *sensitive* and *not
extractable*: the token signs with it and refuses to hand it out, to this process or any other.
The signing process holds no key material, only a session handle.

A PKCS#11 session belongs to the process that opened it: after ``fork`` (Celery's prefork
pool) the library must be initialised again in the child, or the child would sign on the
parent's handles. :class:`Pkcs11Key` therefore opens its one session lazily, per process id,
and serialises its use between threads (sessions are not to be used concurrently).

A token that stops answering (removed, restarted, network HSM unreachable) is retried with the
library re-initialised and a new session, for up to ``retry_budget_s``; past that the signature
raises :class:`~meterai_signing.errors.KeyUnavailable` and the job is tried again later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pkcs11
from asn1crypto import core
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    ArgumentsBad,
    DataInvalid,
    DataLenRange,
    KeyTypeInconsistent,
    MechanismInvalid,
    MechanismParamInvalid,
    MultipleObjectsReturned,
    NoSuchKey,
    NoSuchToken,
    PinIncorrect,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)
from pkcs11.util.rsa import encode_rsa_public_key

from meterai_signing.errors import IdentityError, KeyUnavailable, SigningError
from meterai_signing.keys import PublicHalf, check_key_shape

__all__ = ["Pkcs11Key", "Pkcs11Settings", "generate_token_key", "open_session"]

log = logging.getLogger(__name__)

_FINAL = (
    ArgumentsBad,
    DataInvalid,
    DataLenRange,
    KeyTypeInconsistent,
    MechanismInvalid,
    MechanismParamInvalid,
    MultipleObjectsReturned,
    PinIncorrect,
    PinLocked,
)
"""Errors no retry can fix: a wrong PIN, mechanism or key is a configuration problem."""


@dataclass(frozen=True)
class Pkcs11Settings:
    """Which token and key to sign with."""

    module: str
    """Path of the PKCS#11 module (``/usr/lib/softhsm/libsofthsm2.so`` for SoftHSM2)."""
    token: str
    """Token label."""
    pin: str = field(repr=False)
    """User PIN of the token."""
    key_label: str = "meterai-signer"
    """Label of the private key (and its public half) inside the token."""
    retry_budget_s: float = 30.0
    """How long one signature waits for a token that does not answer."""


def _canonical(spki_der: bytes) -> bytes:
    """The SPKI as ``cryptography`` encodes it, the form certificates are compared in."""
    return serialization.load_der_public_key(spki_der).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_key_der(public: Any) -> tuple[bytes, str, int]:
    """SPKI DER, kind and size of a token public key object."""

    if public.key_type == KeyType.RSA:
        pkcs1 = encode_rsa_public_key(public)
        spki = asn1_keys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "rsa", "parameters": core.Null()},
                "public_key": asn1_keys.RSAPublicKey.load(pkcs1),
            }
        )
        return _canonical(spki.dump()), "RSA", spki.bit_size
    if public.key_type == KeyType.EC:
        der = encode_ec_public_key(public)
        info = asn1_keys.PublicKeyInfo.load(der)
        curve = info["algorithm"]["parameters"].chosen.native
        check_key_shape("EC", curve)
        return _canonical(der), "EC", info.bit_size
    raise IdentityError(f"the token key is {public.key_type!r}; only RSA and EC keys can sign")


class Pkcs11Key(PublicHalf):
    """A :class:`~meterai_signing.keys.KeySigner` whose private key never leaves its token."""

    def __init__(self, settings: Pkcs11Settings) -> None:
        """Open the token once to read the public key, so a wrong configuration fails at start.

        :raises IdentityError: the module, token or key cannot be found or used.
        """
        self._settings = settings
        self._lock = threading.Lock()
        self._pid = 0
        self._session: Any = None
        self._private: Any = None
        self._stale = False
        try:
            with self._lock:
                public = self._open()
                self._public_key_der, self._kind, self._bits = _public_key_der(public)
        except (PKCS11Error, RuntimeError, OSError) as exc:
            raise IdentityError(
                f"cannot use key {settings.key_label!r} in token {settings.token!r} "
                f"through {settings.module}: {exc!r}"
            ) from exc
        if self._kind == "RSA":
            check_key_shape("RSA", self._bits)

    def __repr__(self) -> str:
        return f"Pkcs11Key({self._settings.token}/{self._settings.key_label})"

    @property
    def key_label(self) -> str:
        return f"pkcs11:{self._settings.token}/{self._settings.key_label} {self.key_type}"

    def sign_raw(self, data: bytes) -> bytes:
        deadline = time.monotonic() + self._settings.retry_budget_s
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._lock:
                    if self._session is None or self._pid != os.getpid():
                        self._open()
                    return self._sign(data)
            except _FINAL as exc:
                raise SigningError(f"{self.key_label} refused to sign: {exc!r}") from exc
            except (PKCS11Error, RuntimeError, KeyUnavailable) as exc:
                with self._lock:
                    self._forget()
                if time.monotonic() >= deadline:
                    raise KeyUnavailable(
                        f"the token {self._settings.token!r} did not sign for "
                        f"{self._settings.retry_budget_s:g} s ({attempt} attempts): {exc!r}"
                    ) from exc
                log.warning("token %s failed (%r); reopening", self._settings.token, exc)
                time.sleep(min(0.1 * 2**attempt, 2.0, max(0.0, deadline - time.monotonic())))

    def _sign(self, data: bytes) -> bytes:
        if self._kind == "RSA":
            signature: bytes = self._private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
            return signature
        raw = self._private.sign(data, mechanism=Mechanism.ECDSA_SHA256)
        der: bytes = encode_ecdsa_signature(raw)
        return der

    def _open(self) -> Any:
        """(Re)open the session for this process; returns the public key object."""
        settings = self._settings
        lib = pkcs11.lib(settings.module)
        if self._stale or self._pid not in (0, os.getpid()):
            # A token that failed, or a child after fork: start the library afresh.
            lib.reinitialize()
            self._stale = False
        try:
            token = lib.get_token(token_label=settings.token)
        except NoSuchToken as exc:
            raise KeyUnavailable(f"no token labelled {settings.token!r}") from exc
        session = open_session(token, settings.pin)
        try:
            self._private = session.get_key(
                object_class=ObjectClass.PRIVATE_KEY, label=settings.key_label
            )
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=settings.key_label)
        except NoSuchKey as exc:
            session.close()
            raise IdentityError(
                f"token {settings.token!r} holds no key labelled {settings.key_label!r}; "
                "create it with 'meterai admin init-pki --pkcs11 MODULE --token LABEL'"
            ) from exc
        self._session = session
        self._pid = os.getpid()
        return public

    def _forget(self) -> None:
        session, self._session, self._private = self._session, None, None
        self._stale = True
        if session is not None and self._pid == os.getpid():
            # the session may be gone with the token; then there is nothing to release
            with contextlib.suppress(PKCS11Error, RuntimeError):
                session.close()


def open_session(token: Any, pin: str, *, rw: bool = False) -> Any:
    """A session on ``token``, logged in as its user.

    Login is per process in PKCS#11: when another session of this process logged in already,
    the new session shares that login instead of logging in again.
    """
    try:
        return token.open(user_pin=pin, rw=rw)
    except UserAlreadyLoggedIn:
        return token.open(rw=rw)


def generate_token_key(settings: Pkcs11Settings, key_type: str = "rsa2048") -> None:
    """Generate the platform key pair inside the token, unless one with the label exists.

    The private key is created ``SENSITIVE`` and not ``EXTRACTABLE`` (so it can never be read
    out, wrapped or exported, not even by the security officer), ``TOKEN`` (persistent) and
    ``PRIVATE`` (usable only after login), with ``SIGN`` its only use.

    :param key_type: ``rsa2048``, ``rsa3072`` or ``ecdsa-p256``.
    :raises IdentityError: the token cannot be opened or the key type is unknown.
    """
    try:
        token = pkcs11.lib(settings.module).get_token(token_label=settings.token)
        with open_session(token, settings.pin, rw=True) as session:
            try:
                session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=settings.key_label)
                log.info("token %s already holds %s", settings.token, settings.key_label)
                return
            except NoSuchKey:
                pass
            private_template = {
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SIGN: True,
                Attribute.DECRYPT: False,
                Attribute.UNWRAP: False,
                Attribute.DERIVE: False,
            }
            public_template = {Attribute.TOKEN: True, Attribute.VERIFY: True}
            if key_type in ("rsa2048", "rsa3072"):
                session.generate_keypair(
                    KeyType.RSA,
                    int(key_type[3:]),
                    label=settings.key_label,
                    store=True,
                    public_template=public_template,
                    private_template=private_template,
                )
            elif key_type == "ecdsa-p256":
                parameters = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                    local=True,
                )
                parameters.generate_keypair(
                    label=settings.key_label,
                    store=True,
                    public_template=public_template,
                    private_template=private_template,
                )
            else:
                raise IdentityError(f"unknown key type {key_type!r}")
    except PKCS11Error as exc:
        raise IdentityError(
            f"cannot create key {settings.key_label!r} in token {settings.token!r}: {exc!r}"
        ) from exc

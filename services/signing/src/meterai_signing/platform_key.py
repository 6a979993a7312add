"""Which key signs and which authority timestamps, from :class:`~meterai_common.config.Settings`.

* ``METERAI_PKCS11_MODULE`` set: the key lives in that PKCS#11 token
  (:class:`~meterai_signing.pkcs11_key.Pkcs11Key`); its certificate chain is
  ``METERAI_SIGNING_CHAIN``, or the one ``meterai admin init-pki --pkcs11`` wrote
  (:func:`token_chain_path`).
* otherwise the PEM key of ``METERAI_SIGNING_KEY`` is held in memory, or (development only) a
  generated test key.
* ``METERAI_TSA_URL`` set: every signature is timestamped by that authority (PAdES B-T).
"""

from __future__ import annotations

from pathlib import Path

from meterai_common.config import Settings
from meterai_signing.cms import SigningIdentity, identity_for_key
from meterai_signing.errors import IdentityError
from meterai_signing.pkcs11_key import Pkcs11Key, Pkcs11Settings
from meterai_signing.signer import load_signer_identity
from meterai_signing.timestamps import HttpTimeStamper, TimestampSource, TsaSettings

__all__ = ["pkcs11_settings", "platform_identity", "platform_timestamper", "token_chain_path"]


def token_chain_path(settings: Settings) -> Path:
    """Where ``init-pki --pkcs11`` writes the token key's certificate chain."""
    return settings.pki_dir / "token-chain.pem"


def pkcs11_settings(settings: Settings) -> Pkcs11Settings | None:
    """The token configuration, or ``None`` when the key is not in a token."""
    if settings.pkcs11_module is None:
        return None
    assert settings.pkcs11_token is not None and settings.pkcs11_pin is not None
    return Pkcs11Settings(
        module=settings.pkcs11_module,
        token=settings.pkcs11_token,
        pin=settings.pkcs11_pin,
        key_label=settings.pkcs11_key_label,
    )


def platform_identity(settings: Settings) -> SigningIdentity:
    """The platform's signing identity: its key (in a token or in memory) and its chain.

    :raises IdentityError: the key or chain cannot be used.
    """
    token = pkcs11_settings(settings)
    if token is None:
        return load_signer_identity(settings.signing_key, settings.signing_chain, settings.pki_dir)
    chain = settings.signing_chain or token_chain_path(settings)
    try:
        chain_pem = chain.read_bytes()
    except OSError as exc:
        raise IdentityError(
            f"cannot read the certificate chain of the token key ({chain}): {exc}; "
            "run 'meterai admin init-pki --pkcs11 MODULE --token LABEL' or set "
            "METERAI_SIGNING_CHAIN"
        ) from exc
    return identity_for_key(Pkcs11Key(token), chain_pem)


def platform_timestamper(settings: Settings) -> TimestampSource | None:
    """The configured timestamp authority, or ``None`` (signatures are then PAdES B-B)."""
    if settings.tsa_url is None:
        return None
    return HttpTimeStamper(
        TsaSettings(
            url=settings.tsa_url,
            timeout_s=settings.tsa_timeout_ms / 1000,
            username=settings.tsa_username,
            password=settings.tsa_password,
            token_bound=settings.tsa_token_bound or None,
        )
    )

"""``meterai admin init-pki --pkcs11``: put the platform key in a token and certify it.

The token must exist already (``softhsm2-util --init-token`` for SoftHSM2, the vendor's tool
for a network HSM). This generates the key pair inside it (sensitive, never extractable),
issues its document-signer certificate from the test CA, writes the chain where the signing
service looks for it, and records ``key_created`` in the audit trail. Running it again with the
key in place changes nothing but re-issuing a missing chain file.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterai_common import audit
from meterai_common.config import Settings
from meterai_common.db import create_engine, migrate, transaction
from meterai_signing.cms import identity_for_key
from meterai_signing.errors import IdentityError
from meterai_signing.pkcs11_key import Pkcs11Key, Pkcs11Settings, generate_token_key
from meterai_signing.pki import ensure_test_pki, issue_signer_certificate
from meterai_signing.platform_key import token_chain_path

__all__ = ["TokenKey", "init_token_pki"]


@dataclass(frozen=True)
class TokenKey:
    """What ``init-pki --pkcs11`` set up."""

    key_label: str
    chain: str
    """Path of the chain file (signer certificate, then intermediate)."""
    created: bool
    """False when the token already held the key."""


def init_token_pki(settings: Settings, token: Pkcs11Settings, key_type: str) -> TokenKey:
    """Generate (once) the key in ``token``, certify it, and record it in the audit trail.

    :raises IdentityError: the token cannot be used.
    """
    pki = ensure_test_pki(settings.pki_dir, key_type=key_type)  # type: ignore[arg-type]
    try:
        Pkcs11Key(token)
        created = False
    except IdentityError:
        generate_token_key(token, key_type)
        created = True
    key = Pkcs11Key(token)
    chain_path = token_chain_path(settings)
    fresh = True
    if chain_path.is_file():
        try:
            identity_for_key(key, chain_path.read_bytes())
            fresh = False
        except IdentityError:
            fresh = True  # the chain of another key: certify this one
    if fresh:
        chain_path.write_bytes(issue_signer_certificate(pki, key.public_key_der))
    if created or fresh:
        engine = create_engine(settings.database_url)
        migrate(engine)
        kind = audit.EventKind.KEY_CREATED if created else audit.EventKind.KEY_ROTATED
        with transaction(engine) as conn:
            audit.record(
                conn,
                audit.AuditEvent(
                    kind=kind,
                    subject=key.key_label,
                    details={
                        "key_label": key.key_label,
                        "token": token.token,
                        "module": token.module,
                        "certificate_issued": fresh,
                    },
                ),
            )
        engine.dispose()
    return TokenKey(key_label=key.key_label, chain=str(chain_path), created=created)

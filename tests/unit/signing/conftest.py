"""Test PKIs for the signing unit tests: one per key type, generated once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meterai_signing.cms import SigningIdentity, load_identity
from meterai_signing.pki import KeyType, TestPki, generate_test_pki

KEY_TYPES: tuple[KeyType, ...] = ("rsa2048", "rsa3072", "ecdsa-p256")


@pytest.fixture(scope="session")
def pki_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[KeyType], TestPki]:
    """Generate (at most once per key type) a root/intermediate/signer PKI."""
    made: dict[KeyType, TestPki] = {}

    def make(key_type: KeyType) -> TestPki:
        if key_type not in made:
            directory: Path = tmp_path_factory.mktemp(f"pki-{key_type}")
            made[key_type] = generate_test_pki(directory, key_type=key_type)
        return made[key_type]

    return make


@pytest.fixture(scope="session", params=KEY_TYPES)
def key_type(request: pytest.FixtureRequest) -> KeyType:
    key: KeyType = request.param
    return key


@pytest.fixture(scope="session")
def pki(pki_for: Callable[[KeyType], TestPki], key_type: KeyType) -> TestPki:
    return pki_for(key_type)


@pytest.fixture(scope="session")
def identity(pki: TestPki) -> SigningIdentity:
    return load_identity(pki.signer_key, pki.chain)

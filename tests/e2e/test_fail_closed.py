"""The platform fails closed, checked on real processes: a revoked API key is refused by every
service process on its very next call, a rotated key lives its grace period and no longer, and a
quota service started without a payment provider named refuses to start instead of selling
quota for nothing; and everything the platform keeps under its home is its user's alone."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterai_quota.api_keys import key_id_of
from tests.support.corpus import CORPUS
from tests.support.launch import METERAI, DistributedPlatform, EmbeddedPlatform, _Platform


def _loose_leftovers(home: Path) -> None:
    """What an older version left in a home: readable by everyone."""
    old = os.umask(0o022)
    try:
        (home / "documents" / "stamped").mkdir(parents=True)
        (home / "documents" / "stamped" / "old.pdf").write_bytes(b"%PDF-1.7")
        (home / "documents").chmod(0o755)
        (home / "notes.txt").write_text("left by hand")
        home.chmod(0o755)
    finally:
        os.umask(old)


DOCUMENT = CORPUS / "minimal-document.pdf"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    platform = EmbeddedPlatform(tmp_path_factory.mktemp("embedded"))
    _loose_leftovers(platform.home)
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def distributed(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, amqp_url: str
) -> Iterator[DistributedPlatform]:
    platform = DistributedPlatform(tmp_path_factory.mktemp("distributed"))
    _loose_leftovers(platform.home)
    platform.start(postgres_url, amqp_url, workers=1, extra_env={"METERAI_STAMPING_FINISHERS": "0"})
    platform.add_finisher("finisher-1")
    yield platform
    platform.stop()


def _operator(platform: _Platform) -> str:
    created = platform.cli("admin", "create-reseller", "Key Ops", "--operator", "--json")
    assert created.code == 0, created.stderr
    return str(created.json()["api_key"])


def _reseller(platform: _Platform, operator_key: str) -> tuple[str, str]:
    """A new reseller, and a key made for it with ``meterai admin keys create``."""
    reseller = platform.cli(
        "admin", "create-reseller", f"Toko Kunci {uuid.uuid4().hex[:8]}", "--json"
    )
    assert reseller.code == 0, reseller.stderr
    reseller_id = str(reseller.json()["reseller_id"])
    created = platform.cli(
        "admin", "keys", "create", "--reseller", reseller_id, "--json", api_key=operator_key
    )
    assert created.code == 0, created.stderr
    return reseller_id, str(created.json()["api_key"])


def _works(platform: _Platform, api_key: str) -> None:
    """The key is accepted by the quota process and by the stamping process."""
    for command in (("quota", "balance", "--json"), ("jobs", "list", "--json")):
        result = platform.cli(*command, api_key=api_key)
        assert result.code == 0, result.stderr


def _refused(platform: _Platform, api_key: str) -> None:
    for command in (("jobs", "list"), ("quota", "balance")):
        result = platform.cli(*command, api_key=api_key)
        assert result.code == 1, result.stdout
        assert "UNAUTHENTICATED" in result.stderr and "revoked" in result.stderr


@pytest.mark.parametrize("kind", ["embedded", "distributed"])
def test_a_revoked_key_is_refused_on_its_very_next_call_in_every_process(
    kind: str, request: pytest.FixtureRequest
) -> None:
    platform: _Platform = request.getfixturevalue(kind)
    operator_key = _operator(platform)
    _, api_key = _reseller(platform, operator_key)
    _works(platform, api_key)  # both services have just resolved the key
    revoked = platform.cli("admin", "keys", "revoke", key_id_of(api_key), api_key=operator_key)
    assert revoked.code == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    _refused(platform, api_key)


def test_the_operator_lists_keys_by_id_and_prefix_never_the_key(
    embedded: EmbeddedPlatform,
) -> None:
    operator_key = _operator(embedded)
    reseller_id, api_key = _reseller(embedded, operator_key)
    listed = embedded.cli("admin", "keys", "list", "--reseller", reseller_id, api_key=operator_key)
    assert listed.code == 0, listed.stderr
    assert key_id_of(api_key) in listed.stdout and api_key[:12] in listed.stdout
    assert api_key not in listed.stdout


def test_a_rotated_key_keeps_working_for_its_grace_period_only(
    distributed: DistributedPlatform,
) -> None:
    operator_key = _operator(distributed)
    _, old_key = _reseller(distributed, operator_key)
    kept = distributed.cli(
        "admin", "keys", "rotate", old_key, "--grace", "1h", "--json", api_key=operator_key
    )
    assert kept.code == 0, kept.stderr
    first = str(kept.json()["api_key"])
    _works(distributed, old_key)
    _works(distributed, first)
    ended = distributed.cli(
        "admin",
        "keys",
        "rotate",
        key_id_of(first),
        "--grace",
        "0",
        "--json",
        api_key=operator_key,
    )
    assert ended.code == 0, ended.stderr
    _works(distributed, str(ended.json()["api_key"]))
    result = distributed.cli("quota", "balance", api_key=first)
    assert result.code == 1 and "UNAUTHENTICATED" in result.stderr


def test_the_embedded_operator_key_needs_no_flag(embedded: EmbeddedPlatform) -> None:
    listed = embedded.cli("admin", "keys", "list", "--json")
    assert listed.code == 0, listed.stderr
    roles = {key["role"] for key in listed.json()["keys"]}  # type: ignore[union-attr]
    assert roles == {"API_KEY_ROLE_RESELLER", "API_KEY_ROLE_OPERATOR"}


def test_a_reseller_key_cannot_manage_keys(embedded: EmbeddedPlatform) -> None:
    operator_key = _operator(embedded)
    _, api_key = _reseller(embedded, operator_key)
    result = embedded.cli("admin", "keys", "revoke", api_key, api_key=api_key)
    assert result.code == 1 and "PERMISSION_DENIED" in result.stderr
    _works(embedded, api_key)


# -- payment provider -----------------------------------------------------------------------
def test_a_quota_service_without_a_payment_provider_refuses_to_start(
    distributed: DistributedPlatform, tmp_path: Path
) -> None:
    env = {**distributed.env, "METERAI_HOME": str(tmp_path), "QUOTA_PORT": "0"}
    env.pop("METERAI_PAYMENT_PROVIDER")
    result = subprocess.run(
        [METERAI, "serve", "quota"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "METERAI_PAYMENT_PROVIDER is not set" in result.stderr
    assert "gateway" in result.stderr
    assert "serving" not in result.stdout


def test_start_up_logs_name_the_payment_provider_in_force(
    distributed: DistributedPlatform, embedded: EmbeddedPlatform
) -> None:
    assert "payment provider 'gateway' in force" in distributed.log("quota")
    assert "payment provider 'dev' in force" in embedded.log("up")
    assert "no money is collected" in embedded.log("up")


# -- private home ---------------------------------------------------------------------------
def _readable_by_others(home: Path) -> list[str]:
    loose = []
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            path = Path(root, name)
            mode = stat.S_IMODE(path.lstat().st_mode)
            wanted = 0o700 if path.is_dir() else 0o600
            if mode != wanted:
                loose.append(f"{path.relative_to(home)} {mode:o}")
    mode = stat.S_IMODE(home.stat().st_mode)
    return loose + ([f". {mode:o}"] if mode != 0o700 else [])


@pytest.mark.parametrize("kind", ["embedded", "distributed"])
def test_every_file_under_the_home_is_0600_in_0700_folders(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    platform: _Platform = request.getfixturevalue(kind)
    operator_key = _operator(platform)
    _, api_key = _reseller(platform, operator_key)
    bought = platform.cli("quota", "buy", "1", "--json", api_key=api_key)
    assert bought.code == 0, bought.stderr
    if bought.json()["state"] != "ORDER_STATE_PAID":
        order_id = str(bought.json()["order_id"])
        confirmed = platform.cli(
            "quota",
            "confirm",
            order_id,
            "--reference",
            f"pay-{order_id}",
            "--amount",
            "10000",
            api_key=operator_key,
        )
        assert confirmed.code == 0, confirmed.stderr
    stamped = platform.cli(
        "stamp",
        str(DOCUMENT),
        "--rect",
        "380,60,520,200",
        "--out",
        str(tmp_path),
        api_key=api_key,
    )
    assert stamped.code == 0, stamped.stderr
    home = platform.home
    written = {path.name for path in home.rglob("*")}
    expected = {"pki", "documents", "notes.txt", "old.pdf"} | (
        {"meterai.db", "credentials.json", "platform.json"} if kind == "embedded" else set()
    )
    assert expected <= written, written
    assert any(path.suffix == ".pdf" and path.name != "old.pdf" for path in home.rglob("*"))
    assert _readable_by_others(home) == []

"""Settings come from the environment once, with embedded defaults and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterai_common.config import ConfigError, Settings


def test_defaults_are_the_embedded_platform(tmp_path: Path) -> None:
    settings = Settings.from_env({"METERAI_HOME": str(tmp_path)})
    assert settings.embedded
    assert settings.database_url == f"sqlite:///{tmp_path / 'meterai.db'}"
    assert settings.documents == str(tmp_path / "documents")
    assert settings.payment_provider is None  # named by the operator; `meterai up` picks dev
    assert settings.address("stamping") == "127.0.0.1:50052"


def test_database_and_broker_urls_switch_to_production_adapters(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "METERAI_HOME": str(tmp_path),
            "DATABASE_URL": "postgresql://db/meterai",
            "AMQP_URL": "amqp://guest:guest@mq:5672/%2F",
            "STAMPING_PORT": "6000",
            "SIGNING_ADDR": "signer:7000",
        }
    )
    assert not settings.embedded
    assert settings.database_url == "postgresql://db/meterai"
    assert settings.address("stamping") == "127.0.0.1:6000"
    assert settings.address("signing") == "signer:7000"


def test_home_override_wins_over_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"METERAI_HOME": "/elsewhere"}, home=tmp_path)
    assert settings.home == tmp_path


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUOTA_PORT", "eighty", "whole number"),
        ("VERIFY_PORT", "-1", "must not be negative"),
        ("METERAI_BACKLOG_MAX_WAIT_MS", "0.5", "METERAI_BACKLOG_MAX_WAIT_MS must be a whole"),
        ("METERAI_PAYMENT_PROVIDER", "cash", "'dev' or 'gateway'"),
        ("METERAI_VERIFY_BASE_URL", "ftp://x", r"http\(s\) URL"),
    ],
)
def test_bad_values_fail_fast_with_the_variable_named(
    name: str, value: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"METERAI_HOME": str(tmp_path), name: value})


def test_admission_limits_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "METERAI_HOME": str(tmp_path),
            "METERAI_BACKLOG_HIGH_WATER": "500",
            "METERAI_BACKLOG_MAX_WAIT_MS": "750",
        }
    )
    assert (settings.backlog_high_water, settings.backlog_max_wait_ms) == (500, 750)
    assert Settings.from_env({"METERAI_HOME": str(tmp_path)}).backlog_max_wait_ms == 0


def test_broker_and_database_passwords_come_from_secret_files(tmp_path: Path) -> None:
    (tmp_path / "amqp").write_text("s3cr3t/+@:x\n")
    (tmp_path / "db").write_text("pg pass\n")
    settings = Settings.from_env(
        {
            "METERAI_HOME": str(tmp_path),
            "AMQP_URL": "amqp://meterai-stamping@broker:5671/%2F",
            "AMQP_PASSWORD_FILE": str(tmp_path / "amqp"),
            "DATABASE_URL": "postgresql+psycopg://stamping@db/meterai?sslmode=verify-full",
            "DATABASE_PASSWORD_FILE": str(tmp_path / "db"),
        }
    )
    assert settings.amqp_url == "amqp://meterai-stamping:s3cr3t%2F%2B%40%3Ax@broker:5671/%2F"
    assert settings.database_url == (
        "postgresql+psycopg://stamping:pg%20pass@db/meterai?sslmode=verify-full"
    )


def test_a_password_file_needs_a_user_in_the_url(tmp_path: Path) -> None:
    (tmp_path / "amqp").write_text("pw\n")
    with pytest.raises(ConfigError, match="names no user"):
        Settings.from_env(
            {
                "METERAI_HOME": str(tmp_path),
                "AMQP_URL": "amqp://broker/",
                "AMQP_PASSWORD_FILE": str(tmp_path / "amqp"),
            }
        )


def test_the_signature_level_is_checked_against_the_timestamp_authority(tmp_path: Path) -> None:
    home = {"METERAI_HOME": str(tmp_path)}
    tsa = {**home, "METERAI_TSA_URL": "http://127.0.0.1:8318/"}
    assert Settings.from_env(tsa).signature_level == ""
    settings = Settings.from_env({**tsa, "METERAI_SIGNATURE_LEVEL": "b-lta"})
    assert (settings.signature_level, settings.revocation_timeout_ms) == ("B-LTA", 5000)
    with pytest.raises(ConfigError, match="needs a timestamp authority"):
        Settings.from_env({**home, "METERAI_SIGNATURE_LEVEL": "B-LT"})
    with pytest.raises(ConfigError, match="contradicts METERAI_TSA_URL"):
        Settings.from_env({**tsa, "METERAI_SIGNATURE_LEVEL": "B-B"})
    with pytest.raises(ConfigError, match="B-B, B-T, B-LT or B-LTA"):
        Settings.from_env({**tsa, "METERAI_SIGNATURE_LEVEL": "LTV"})


def test_an_amqp_url_may_list_the_nodes_of_a_cluster_each_given_the_password(
    tmp_path: Path,
) -> None:
    (tmp_path / "amqp").write_text("pw\n")
    settings = Settings.from_env(
        {
            "METERAI_HOME": str(tmp_path),
            "AMQP_URL": "amqps://stamping@rmq-0:5671/%2F; amqps://stamping@rmq-1:5671/%2F;",
            "AMQP_PASSWORD_FILE": str(tmp_path / "amqp"),
        }
    )
    assert settings.amqp_url == (
        "amqps://stamping:pw@rmq-0:5671/%2F;amqps://stamping:pw@rmq-1:5671/%2F"
    )
    assert Settings.from_env({"METERAI_HOME": str(tmp_path), "AMQP_URL": " ; "}).embedded

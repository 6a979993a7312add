"""Where the site serves seal pages follows the QR's base URL; embedded QRs point at the site."""

from __future__ import annotations

from pathlib import Path

from meterai_common.config import Settings
from meterai_verify.web.server import web_config


def test_seal_pages_are_served_at_the_base_url_s_path(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"METERAI_VERIFY_BASE_URL": "https://cek.meterai.go.id/seal"}, home=tmp_path
    )
    assert web_config(settings).serial_prefix == "/seal"
    assert settings.verify_base_url_configured


def test_without_a_base_url_the_embedded_platform_may_point_qrs_at_its_own_site(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({}, home=tmp_path)
    assert not settings.verify_base_url_configured
    assert web_config(settings).serial_prefix == "/v"


def test_the_upload_limit_is_the_platform_s_document_limit(tmp_path: Path) -> None:
    settings = Settings.from_env({"METERAI_MAX_DOCUMENT_BYTES": "1048576"}, home=tmp_path)
    assert web_config(settings).guard.max_upload_bytes == 1048576


def test_the_site_has_its_own_port(tmp_path: Path) -> None:
    assert Settings.from_env({}, home=tmp_path).ports.web == 8443
    assert Settings.from_env({"WEB_PORT": "0"}, home=tmp_path).ports.web == 0

"""SoftHSM2 tokens for tests: a real PKCS#11 module with its token files in a temp directory.

SoftHSM2 reads ``SOFTHSM2_CONF`` when the library is initialised, so every process that uses
a token (the test itself, or the signing service and workers) gets :meth:`SoftHsmToken.env`.
:meth:`SoftHsmToken.removed` takes the token away (its files vanish, as when an HSM is
unplugged or unreachable) and puts it back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meterai_signing.pkcs11_key import Pkcs11Settings

__all__ = ["SOFTHSM_MODULE", "SoftHsmToken", "softhsm_token"]

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class SoftHsmToken:
    conf: Path
    tokens: Path
    label: str
    pin: str
    pin_file: Path

    @property
    def module(self) -> str:
        return SOFTHSM_MODULE

    def settings(self, key_label: str = "meterai-signer", budget_s: float = 30.0) -> Pkcs11Settings:
        return Pkcs11Settings(
            module=SOFTHSM_MODULE,
            token=self.label,
            pin=self.pin,
            key_label=key_label,
            retry_budget_s=budget_s,
        )

    def env(self) -> dict[str, str]:
        """What a platform process needs to sign with this token's ``meterai-signer`` key."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "METERAI_PKCS11_MODULE": SOFTHSM_MODULE,
            "METERAI_PKCS11_TOKEN": self.label,
            "METERAI_PKCS11_PIN_FILE": str(self.pin_file),
        }

    @contextmanager
    def removed(self, for_s: float) -> Iterator[None]:
        """The token is gone for ``for_s`` seconds (inside the block), then back."""
        away = self.tokens.with_name(self.tokens.name + ".removed")
        os.rename(self.tokens, away)
        try:
            yield
            time.sleep(for_s)
        finally:
            os.rename(away, self.tokens)


def softhsm_token(directory: Path, label: str = "meterai", pin: str = "4321") -> SoftHsmToken:
    """Initialise a fresh SoftHSM2 token under ``directory``."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(SOFTHSM_MODULE).exists():
        raise RuntimeError("SoftHSM2 is not installed: run 'make system-deps' (Debian softhsm2)")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pin_file = directory / "pin"
    pin_file.write_text(pin + "\n")
    os.chmod(pin_file, 0o600)
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "87654321"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return SoftHsmToken(conf=conf, tokens=tokens, label=label, pin=pin, pin_file=pin_file)

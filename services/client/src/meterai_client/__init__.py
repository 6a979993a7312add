"""Python client of the meterai platform.

>>> from meterai_client import Client
>>> with Client.from_home(Path(".meterai")) as client:        # doctest: +SKIP
...     stamped = client.stamp("letter.pdf", rect=(400, 50, 520, 170))
...     Path("stamped.pdf").write_bytes(stamped.pdf)

Typed stubs of every public service are ``client.quota``, ``client.stamping`` and
``client.verification`` (generated from the protos, ``meterai-contracts``).
"""

from meterai_client.client import Client, Stamped
from meterai_client.errors import MeteraiError, StampFailed, error_of

__all__ = ["Client", "MeteraiError", "StampFailed", "Stamped", "error_of"]

"""Classic cross-reference rows are accepted exactly when ISO 32000 (7.5.4) allows them:
20 bytes each, ``oooooooooo ggggg k`` and a two-byte end of row."""

from __future__ import annotations

import random
import re

import pytest

from meterai_stamping.engine.source import _rows_well_formed

_ROWS = re.compile(rb"(?:\d{10} \d{5} [nf](?: \n|\r\n| \r))*")
"""The rule as a regular expression: the reference the column-wise check must agree with."""


@pytest.mark.parametrize("eol", [b" \n", b"\r\n", b" \r"])
def test_each_allowed_end_of_row_is_accepted(eol: bytes) -> None:
    block = b"0000000000 65535 f" + eol + b"0000000017 00000 n" + eol
    assert _rows_well_formed(block, 2)


@pytest.mark.parametrize(
    "row",
    [
        b"0000000017 00000 n\r\r",
        b"0000000017 00000 n\n\n",
        b"000000017  00000 n \n",
        b"0000000017 00000 x \n",
        b"00000000a7 00000 n \n",
        b"0000000017\t00000 n \n",
    ],
)
def test_a_malformed_row_is_refused(row: bytes) -> None:
    assert not _rows_well_formed(b"0000000000 65535 f \n" + row, 2)


def test_the_column_check_agrees_with_the_rule_on_random_rows() -> None:
    rng = random.Random(14)
    alphabet = b"0123456789 nf\r\n\tx"
    good = b"0000000017 00000 n \n"
    for _ in range(5000):
        count = rng.randint(0, 4)
        rows = bytearray(good * count)
        for _ in range(rng.randint(0, 2)):
            if rows:
                rows[rng.randrange(len(rows))] = rng.choice(alphabet)
        block = bytes(rows)
        assert _rows_well_formed(block, count) == (_ROWS.fullmatch(block) is not None), block

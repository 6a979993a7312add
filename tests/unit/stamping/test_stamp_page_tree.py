"""Finding the target page of a long, flat page tree (the root lists every page)."""

from __future__ import annotations

import re

import pytest

from meterai_stamping.engine import inspect
from tests.unit.stamping.samples import PageSpec, build_pdf, prepare_seal

_PAGES = 120


def _distinct_sizes() -> list[PageSpec]:
    return [PageSpec(media=(0, 0, 300 + i, 400 + i)) for i in range(_PAGES)]


def test_inspect_reads_every_page_of_a_flat_tree_in_order() -> None:
    info = inspect(build_pdf(_distinct_sizes()))
    assert info.page_count == _PAGES
    assert [(s.width, s.height) for s in info.page_sizes] == [
        (300 + i, 400 + i) for i in range(_PAGES)
    ]


@pytest.mark.parametrize("page", [1, 2, 57, _PAGES])
def test_the_seal_goes_on_the_requested_page_of_a_flat_tree(page: int) -> None:
    prepared = prepare_seal(build_pdf(_distinct_sizes()), page=page)
    widget = re.search(rb"/Subtype /Widget .*? /P (\d+) 0 R", prepared.update)
    assert widget is not None
    assert int(widget.group(1)) == 4 + 2 * (page - 1)  # build_pdf numbers page i as 4 + 2i

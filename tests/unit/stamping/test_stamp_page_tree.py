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


def test_kids_written_without_spaces_between_references_are_read_as_pypdf_reads_them() -> None:
    original = build_pdf(_distinct_sizes())
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(_PAGES))
    assert original.count(kids) == 1
    # "4 0 R6 0 R...": the same length, so every offset stays right.
    packed = original.replace(kids, kids.replace(b" 0 R ", b" 0 R") + b" " * (_PAGES - 1))
    assert inspect(packed).page_count == _PAGES
    prepared = prepare_seal(packed, page=57)
    widget = re.search(rb"/Subtype /Widget .*? /P (\d+) 0 R", prepared.update)
    assert widget is not None and int(widget.group(1)) == 4 + 2 * 56

"""A batch of signing answers whose finishing fails for one document leaves only that one to
the dead letters: delivered again, the batch is finished one answer at a time, from the front
and then from the back, so every other answer is committed before the delivery limit."""

from __future__ import annotations

import pytest

from meterai_common.messaging import DELIVERY_LIMIT
from meterai_stamping.domain.answer_batches import finishing_order


def test_the_first_delivery_finishes_the_batch_together() -> None:
    assert finishing_order(["a", "b", "c"], 0) == [["a", "b", "c"]]


def test_a_batch_delivered_again_is_finished_one_answer_at_a_time_from_alternate_ends() -> None:
    assert finishing_order(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]
    assert finishing_order(["a", "b", "c"], 2) == [["c"], ["b"], ["a"]]
    assert finishing_order(["a", "b", "c"], 3) == [["a"], ["b"], ["c"]]


def test_one_answer_or_none_is_finished_as_it_came() -> None:
    assert finishing_order(["a"], 4) == [["a"]]
    assert finishing_order([], 0) == []
    assert finishing_order([], 2) == []


@pytest.mark.parametrize("bad", range(6))
def test_only_the_bad_answer_is_left_when_the_delivery_limit_is_reached(bad: int) -> None:
    """Each delivery commits parts in order until the part holding the bad answer fails (the
    whole delivery then goes back to the queue); an answer committed once is never lost."""
    answers = list(range(6))
    finished: set[int] = set()
    for earlier in range(DELIVERY_LIMIT):
        for part in finishing_order(answers, earlier):
            if bad in part:
                break
            finished.update(part)
    assert set(answers) - finished == {bad}

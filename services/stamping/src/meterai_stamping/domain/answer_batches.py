"""How a batch of signing answers is finished, and why a batch delivered again is taken apart.

No I/O: the finishing consumer asks :func:`finishing_order` how to split what the broker
delivered, given how often it delivered it before.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["finishing_order"]

_T = TypeVar("_T")


def finishing_order(answers: list[_T], earlier: int) -> list[list[_T]]:
    """How a batch of answers is finished: together the first time; one at a time once the
    batch came back (``earlier`` deliveries before this one), forwards then backwards in
    turn.

    A batch comes back because its finishing failed or killed the process, maybe for one
    document alone (a prepared file that cannot be read, a signature that blows up its
    embedding). Finished together, that one would take every other answer of the batch to the
    delivery limit with it, and all of them would be failed and refunded. One at a time, each
    delivery commits the answers before the bad one; the next, taking them from the other
    end, those after it; so only the bad one is left to meet the limit and be set aside."""
    if earlier == 0 or len(answers) < 2:
        return [answers] if answers else []
    order = answers if earlier % 2 else answers[::-1]
    return [[answer] for answer in order]

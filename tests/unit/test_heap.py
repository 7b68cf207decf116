"""The server moves what a load made out of the cyclic collector's way (``settle_heap``):
full collections no longer walk the corpus in the middle of a request, and what a reload
left behind is still freed."""

from __future__ import annotations

import gc
import weakref

from llmref.lsp.loading import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_a_settled_heap_is_not_walked_by_full_collections():
    loaded = [{"entry": i, "answer": "x" * 10} for i in range(50_000)]
    settle_heap()
    try:
        assert gc.get_freeze_count() >= len(loaded)
        assert len(gc.get_objects()) < len(loaded)  # what a full collection walks
    finally:
        gc.unfreeze()


def test_what_an_earlier_load_left_unreachable_is_freed_at_the_next():
    old = _Node()
    gone = weakref.ref(old)
    settle_heap()  # the old load, frozen
    try:
        del old  # replaced by a reload: unreachable, but frozen
        gc.collect()
        assert gone() is not None  # a frozen cycle waits…
        settle_heap()  # …until the next load settles
        assert gone() is None
    finally:
        gc.unfreeze()

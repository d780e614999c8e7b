"""The garbage-collector policy that keeps full collections out of streaming runs."""

from __future__ import annotations

import gc

import pytest

from tui.app.app import StreamingGC


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_full_collections_are_held_during_a_run_and_restored_after_its_collection(thresholds):
    policy = StreamingGC()
    policy.hold()
    assert gc.get_threshold() == (700, 10, StreamingGC.HELD_THRESHOLD)
    policy.release()
    # Still held: restoring at once would let the pent-up full collection hit the last frame.
    assert gc.get_threshold()[2] == StreamingGC.HELD_THRESHOLD
    collected_before = gc.get_stats()[2]["collections"]
    policy.collect_if_idle()
    assert gc.get_stats()[2]["collections"] == collected_before + 1
    assert gc.get_threshold() == (700, 10, 10)


def test_holds_nest_and_a_run_in_flight_defers_the_collection(thresholds):
    policy = StreamingGC()
    policy.hold()
    policy.hold()  # a new run starts before the last one wound down
    policy.release()
    policy.collect_if_idle()  # the second run still streams: nothing happens
    assert policy.held
    assert gc.get_threshold()[2] == StreamingGC.HELD_THRESHOLD
    policy.release()
    policy.collect_if_idle()
    assert not policy.held
    assert gc.get_threshold() == (700, 10, 10)


def test_a_hold_after_release_keeps_the_original_thresholds(thresholds):
    policy = StreamingGC()
    policy.hold()
    policy.release()
    policy.hold()  # before the deferred collection ran
    policy.release()
    policy.collect_if_idle()
    assert gc.get_threshold() == (700, 10, 10)

"""The anonymous visitors' limits (ivr.chat.limits): per client address and in total, in a
sliding window."""

from __future__ import annotations

from ivr.chat.limits import CALLBACKS_PER_ADDRESS, Window, callback_window


def test_callbacks_are_limited_per_address_whatever_the_identity() -> None:
    w = callback_window()
    assert all(w.allow("10.0.0.1", float(i)) for i in range(CALLBACKS_PER_ADDRESS))
    assert not w.allow("10.0.0.1", 10.0)
    assert w.allow("10.0.0.2", 10.0)  # another address is not held back


def test_callbacks_are_limited_in_total() -> None:
    w = Window(per_key=5, total=3, seconds=60.0)
    assert [w.allow(f"10.0.0.{i}", 1.0) for i in range(4)] == [True, True, True, False]


def test_the_window_slides() -> None:
    w = Window(per_key=1, total=10, seconds=60.0)
    assert w.allow("a", 0.0) and not w.allow("a", 59.0)
    assert w.allow("a", 60.0)


def test_a_refused_event_is_not_counted() -> None:
    w = Window(per_key=1, total=1, seconds=60.0)
    assert w.allow("a", 0.0) and not w.allow("b", 1.0)
    assert w.allow("b", 61.0)

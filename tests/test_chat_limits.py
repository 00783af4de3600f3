"""The anonymous visitors' limits (ivr.web.limits; the chat's own in ivr.chat.limits): per
client address and in total, in a sliding window (chats started, callback requests) or held at
once (event streams); the times are passed in and the answers computed by hand."""

from __future__ import annotations

from ivr.chat.limits import CALLBACKS_PER_ADDRESS, callback_window
from ivr.config import Settings
from ivr.web.addresses import address_key
from ivr.web.limits import Refusal, Slots, Window

DEFAULTS = Settings()


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


def starts() -> Window:
    """The chats started, with the default settings: 3 per address, 300 in all, in 600 s."""
    return Window(
        DEFAULTS.chat_starts_per_address, DEFAULTS.chat_starts_total, DEFAULTS.chat_starts_window
    )


def test_three_chats_per_address_in_ten_minutes_by_default() -> None:
    w = starts()
    assert [w.check("10.0.0.1", t) for t in (0.0, 100.0, 200.0)] == [None, None, None]
    assert w.check("10.0.0.1", 599.0) is Refusal.KEY  # 0, 100 and 200 are within 600 s
    assert w.check("10.0.0.1", 600.0) is None  # the one at 0 has left the window


def test_a_refused_start_does_not_push_the_window_on() -> None:
    w = Window(per_key=1, total=10, seconds=600.0)
    assert w.check("a", 0.0) is None
    assert w.check("a", 300.0) is Refusal.KEY  # not counted: the next chance is still 600
    assert w.check("a", 600.0) is None


def test_the_total_of_starts_is_told_apart_from_one_address() -> None:
    w = Window(per_key=2, total=3, seconds=600.0)
    assert [w.check(k, 1.0) for k in ("a", "a", "b")] == [None, None, None]
    assert w.check("a", 2.0) is Refusal.KEY
    assert w.check("c", 2.0) is Refusal.TOTAL


def test_four_streams_per_address_by_default_and_a_closed_one_frees_its_place() -> None:
    s = Slots(DEFAULTS.chat_streams_per_address, DEFAULTS.chat_streams_total)
    assert [s.take("10.0.0.1") for _ in range(4)] == [None] * 4
    assert s.take("10.0.0.1") is Refusal.KEY
    assert s.held("10.0.0.1") == 4  # the refused one holds nothing
    assert s.take("10.0.0.2") is None  # another address is not held back
    s.give("10.0.0.1")
    assert s.take("10.0.0.1") is None


def test_streams_are_limited_in_total() -> None:
    s = Slots(per_key=2, total=3)
    assert [s.take(k) for k in ("a", "b", "c", "d")] == [None, None, None, Refusal.TOTAL]
    s.give("a")
    assert s.held() == 2 and s.held("a") == 0
    assert s.take("d") is None


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    one = address_key("2001:db8:1:2::10")
    assert one == address_key("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::10") != one


def test_ipv4_addresses_are_counted_as_they_are() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key(None) == "?"


def test_newcomers_refused_by_the_total_leave_nothing_behind() -> None:
    w = Window(per_key=3, total=2, seconds=600.0)
    assert w.check("a", 0.0) is None and w.check("b", 1.0) is None
    for n in range(1000):  # a flood of new addresses past the total
        assert w.check(f"x{n}", 2.0) is Refusal.TOTAL
    assert w.keys() == 2
    assert w.check("c", 700.0) is None  # a and b's events left the window: forgotten
    assert w.keys() == 1

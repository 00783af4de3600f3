"""The adapter drops the second copy of an event Asterisk delivered through two subscriptions."""

from __future__ import annotations

from ivr.ari.dedupe import RecentEvents
from ivr.ari.events import parse_event


def dtmf(digit: str, at: str) -> dict[str, object]:
    return {
        "type": "ChannelDtmfReceived",
        "timestamp": at,
        "digit": digit,
        "duration_ms": 200,
        "channel": {"id": "1796113265.0", "name": "PJSIP/carrier-00000000"},
        "application": "ivr120",
    }


def test_the_same_key_press_delivered_twice_is_seen_once() -> None:
    recent = RecentEvents()
    raw = dtmf("9", "2026-12-01T08:21:07.062+0000")
    assert [recent.seen(parse_event(raw)), recent.seen(parse_event(dict(raw)))] == [False, True]


def test_the_same_key_pressed_again_later_counts() -> None:
    recent = RecentEvents()
    recent.seen(parse_event(dtmf("9", "2026-12-01T08:21:07.062+0000")))
    assert not recent.seen(parse_event(dtmf("9", "2026-12-01T08:21:09.562+0000")))


def test_memory_is_bounded() -> None:
    recent = RecentEvents(memory=2)
    first = dtmf("1", "2026-12-01T08:21:01.000+0000")
    recent.seen(parse_event(first))
    for i in range(2, 4):
        recent.seen(parse_event(dtmf(str(i), f"2026-12-01T08:21:0{i}.000+0000")))
    assert not recent.seen(parse_event(first))

"""The call flow (ivr.flow.call) on its own, waiting when nobody could answer and the
callback offer. Events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly. The helpers that
drive a flow to a given state are in tests/flow_support.py.
"""

from __future__ import annotations

from ivr.flow.call import (
    MAX_WAIT_TIMER,
    REASSURE_TIMER,
    CallFlow,
    Digit,
    Heard,
    Play,
    PlaybackDone,
    QueueStatus,
    RequestCallback,
    StartTimer,
    TimerFired,
)
from tests.flow_support import (
    consent_asked,
    make_config,
    menu_waiting,
    nobody_waiting,
    one,
    waiting,
)

# --- nobody could answer (issue 8, item 5) ----------------------------------------------------


def test_nobody_reachable_the_caller_is_told_and_offered_a_callback_at_once() -> None:
    flow, _ = consent_asked()
    flow.handle(QueueStatus(0, None, reachable=0), 2.5)
    cmds = flow.handle(Digit("2"), 10.0)
    assert one(cmds, Play).prompts == ("nobody_available", "callback_offer")


def test_nobody_reachable_key_1_requests_the_callback() -> None:
    flow = nobody_waiting()
    assert one(flow.handle(Digit("1"), 12.0), RequestCallback).reason == "max_wait"


def test_nobody_reachable_declined_keeps_waiting_with_the_honest_message() -> None:
    flow = nobody_waiting()
    offer = flow._playback
    flow.handle(Heard("아니요"), 12.0)
    flow.handle(PlaybackDone(offer or ""), 13.0)
    assert one(flow.handle(TimerFired(REASSURE_TIMER), 43.0), Play).prompts == (
        "nobody_available_wait",
    )


def test_everybody_gone_while_waiting_is_announced_at_once() -> None:
    flow = waiting()
    cmds = flow.handle(QueueStatus(0, None, reachable=0), 20.0)
    assert one(cmds, Play).prompts == ("nobody_available", "callback_offer")


def test_everybody_gone_during_an_announcement_is_announced_right_after_it() -> None:
    flow = waiting()
    pb = one(flow.handle(TimerFired(REASSURE_TIMER), 40.0), Play).playback_id
    assert flow.handle(QueueStatus(0, None, reachable=0), 41.0) == []  # not cut off
    assert one(flow.handle(PlaybackDone(pb), 45.0), Play).prompts[0] == "nobody_available"


def test_reachable_counselors_keep_the_usual_reassurance() -> None:
    flow = waiting()
    flow.handle(QueueStatus(0, None, reachable=2), 20.0)
    assert "hold_reassurance" in one(flow.handle(TimerFired(REASSURE_TIMER), 40.0), Play).prompts


def test_max_wait_offers_the_callback_at_the_latest() -> None:
    config = make_config(callback_offer_after=9999.0, max_wait=600.0)
    flow = CallFlow("c2", config, 0.0)
    flow.handle(Digit("5"), 1.0)  # barge-in: no need to wait for the menu
    flow.handle(Digit("2"), 2.0)
    assert "callback_offer" in one(flow.handle(TimerFired(MAX_WAIT_TIMER), 601.0), Play).prompts


def test_queueing_starts_the_max_wait_timer() -> None:
    flow = menu_waiting()
    assert StartTimer(MAX_WAIT_TIMER, 600.0) in flow.handle(Digit("5"), 2.0)

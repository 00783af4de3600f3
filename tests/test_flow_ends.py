"""The call flow (ivr.flow.call) on its own, the ends: the caller hanging up anywhere,
adapter failures, stray and late events. Events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly. The helpers that
drive a flow to a given state are in tests/flow_support.py.
"""

from __future__ import annotations

import pytest

from ivr.flow.call import (
    INPUT_TIMER,
    REASSURE_TIMER,
    CallerHungUp,
    CancelTimer,
    Command,
    Dequeue,
    Digit,
    Enqueue,
    Failed,
    Finish,
    HangupCaller,
    HangupLeg,
    Outcome,
    Play,
    PlaybackDone,
    Recover,
    StaffAnswered,
    StaffHungUp,
    Started,
    StartTimer,
    State,
    StopPlayback,
    TimerFired,
)
from tests.flow_support import (
    CONFIG,
    LEG,
    LIVE_STATES,
    connected,
    connecting,
    ended,
    menu_playing,
    of,
    one,
    waiting,
)

# --- caller hangs up, anywhere ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "outcome", "expect", "forbid"),
    [
        (State.MENU_PLAYING, Outcome.ABANDONED_MENU, [StopPlayback], [Dequeue, HangupLeg]),
        (State.MENU_WAITING, Outcome.ABANDONED_MENU, [], [StopPlayback, Dequeue, HangupLeg]),
        (State.INTRO, Outcome.ABANDONED_INTRO, [StopPlayback, Dequeue], [HangupLeg]),
        (State.CONSENT, Outcome.ABANDONED_CONSENT, [StopPlayback, Dequeue], [HangupLeg]),
        (State.WAITING, Outcome.ABANDONED_QUEUE, [Dequeue], [HangupLeg]),
        (State.CONNECTED, Outcome.COMPLETED, [HangupLeg], [Dequeue]),
        (State.GOODBYE, Outcome.NO_CHOICE, [StopPlayback], [Dequeue, HangupLeg]),
    ],
    ids=lambda v: v.name if isinstance(v, State) else None,
)
def test_caller_hangup_in_each_state(
    state: State, outcome: Outcome, expect: list[type], forbid: list[type]
) -> None:
    flow = LIVE_STATES[state]()
    assert flow.state is state
    cmds = flow.handle(CallerHungUp(), 200.0)
    assert cmds[-1] == Finish(outcome)
    assert CancelTimer(INPUT_TIMER) in cmds and CancelTimer(REASSURE_TIMER) in cmds
    for kind in expect:
        assert of(cmds, kind), f"{kind.__name__} missing from {cmds}"
    for kind in forbid:
        assert not of(cmds, kind), f"unexpected {kind.__name__} in {cmds}"
    assert not of(cmds, HangupCaller) and not of(cmds, Recover)
    if Dequeue in expect:
        assert one(cmds, Dequeue) == Dequeue(flow.record.queue or "")
    if HangupLeg in expect:
        assert one(cmds, HangupLeg) == HangupLeg(LEG)
    assert flow.ended
    assert flow.record.outcome is outcome
    assert flow.record.ended_at == 200.0


def test_caller_hangup_while_waiting_records_wait() -> None:
    flow = waiting()
    flow.handle(CallerHungUp(), 55.0)
    assert flow.record.wait_seconds == pytest.approx(53.0)
    assert flow.record.talk_seconds is None
    assert flow.record.answered_at is None


def test_caller_hangup_while_connected_records_talk() -> None:
    flow = connected()
    flow.handle(CallerHungUp(), 100.0)
    assert flow.record.talk_seconds == pytest.approx(60.0)


# --- adapter failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "cleanup"),
    [
        (State.MENU_PLAYING, []),
        (State.MENU_WAITING, []),
        (State.INTRO, [Dequeue("general")]),
        (State.CONSENT, [Dequeue("loneliness")]),
        (State.WAITING, [Dequeue("loneliness")]),
        (State.CONNECTED, [HangupLeg(LEG)]),
        (State.GOODBYE, []),
    ],
    ids=lambda v: v.name if isinstance(v, State) else None,
)
def test_failure_recovers_and_ends_with_error(state: State, cleanup: list[Command]) -> None:
    flow = LIVE_STATES[state]()
    cmds = flow.handle(Failed("ARI said no"), 300.0)
    assert cmds[-2:] == [Recover(), Finish(Outcome.ERROR)]
    assert of(cmds, Dequeue) + of(cmds, HangupLeg) == cleanup
    assert not of(cmds, HangupCaller)
    assert flow.ended
    assert flow.record.outcome is Outcome.ERROR
    assert flow.record.ended_at == 300.0
    # Once recovered, the caller's later hangup changes nothing.
    assert flow.handle(CallerHungUp(), 301.0) == []
    assert flow.record.outcome is Outcome.ERROR


# --- stray and late events ----------------------------------------------------------------


@pytest.mark.parametrize("state", [State.MENU_PLAYING, State.MENU_WAITING, State.GOODBYE])
def test_staff_answer_outside_waiting_is_hung_up(state: State) -> None:
    flow = LIVE_STATES[state]()
    assert flow.handle(StaffAnswered("leg-9", "counselor09"), 5.0) == [HangupLeg("leg-9")]
    assert flow.state is state
    assert flow.record.answered_at is None


def test_staff_answer_after_the_end_is_hung_up() -> None:
    flow = ended()
    assert flow.handle(StaffAnswered("leg-9", "counselor09"), 6.0) == [HangupLeg("leg-9")]
    assert flow.record.outcome is Outcome.ABANDONED_MENU


@pytest.mark.parametrize(
    "state", [State.MENU_PLAYING, State.MENU_WAITING, State.INTRO, State.WAITING, State.GOODBYE]
)
def test_stale_playback_done_is_ignored(state: State) -> None:
    flow = LIVE_STATES[state]()
    assert flow.handle(PlaybackDone("c1-pb999"), 5.0) == []
    assert flow.state is state


def test_staff_hangup_outside_connected_is_ignored() -> None:
    flow = waiting()
    assert flow.handle(StaffHungUp(), 20.0) == []
    assert flow.state is State.WAITING


@pytest.mark.parametrize(
    "event",
    [
        Started(),
        Digit("5"),
        Digit("*"),
        PlaybackDone("c1-pb1"),
        TimerFired(INPUT_TIMER),
        TimerFired(REASSURE_TIMER),
        CallerHungUp(),
        StaffHungUp(),
        Failed("late"),
    ],
    ids=repr,
)
def test_events_after_the_end_do_nothing(
    event: Started | Digit | PlaybackDone | TimerFired | CallerHungUp | StaffHungUp | Failed,
) -> None:
    flow = ended()
    before = (flow.record.outcome, flow.record.ended_at)
    assert flow.handle(event, 99.0) == []
    assert flow.ended
    assert (flow.record.outcome, flow.record.ended_at) == before


def test_after_normal_completion_nothing_more_happens() -> None:
    flow = connected()
    flow.handle(StaffHungUp(), 100.0)
    for event in (CallerHungUp(), StaffHungUp(), Failed("x"), TimerFired(REASSURE_TIMER)):
        assert flow.handle(event, 101.0) == []
    assert flow.record.outcome is Outcome.COMPLETED


def test_playback_ids_are_unique_per_call() -> None:
    flow, pb1 = menu_playing()
    pb2 = one(flow.handle(Digit("*"), 1.0), Play).playback_id
    pb3 = one(flow.handle(Digit("5"), 2.0), Play).playback_id
    assert len({pb1, pb2, pb3}) == 3
    assert all(pb.startswith("c1-") for pb in (pb1, pb2, pb3))


def test_counselor_drops_during_whisper_caller_waits_on_keeping_place() -> None:
    flow, whisper = connecting()
    cmds = flow.handle(StaffHungUp(), 41.0)
    assert flow.state is State.WAITING
    assert StopPlayback(whisper) in cmds
    assert Enqueue("loneliness", 2.0) in cmds  # the original place in the queue
    assert StartTimer(REASSURE_TIMER, CONFIG.reassurance_interval) in cmds
    assert flow.record.member is None
    # A late 'done' of the stopped whisper does not connect anyone.
    assert flow.handle(PlaybackDone(whisper), 41.5) == []


def test_caller_hangs_up_during_whisper() -> None:
    flow, _ = connecting()
    cmds = flow.handle(CallerHungUp(), 41.0)
    assert HangupLeg(LEG) in cmds
    assert cmds[-1] == Finish(Outcome.ABANDONED_QUEUE)
